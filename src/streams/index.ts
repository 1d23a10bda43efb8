// Byte-stream building blocks shared by archives, uploads and restores: a Transform that counts and hashes what
// passes, and a byte-rate throttle (a token bucket) that paces disk reads and uploads. Pure Node streams, no I/O of
// their own, so the bottom layers (archive) and the upper ones (storage, restore, jobs) can all use them.
// May import: nothing from src.
export { HashingCounter } from './hashing-counter.ts';
export { RateLimit, Throttle, throttle, type ThrottleClock } from './throttle.ts';
