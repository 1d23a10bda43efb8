// Client-side encryption of stored objects: keys and key ids (keys.ts) and the streaming format (stream.ts).
// Owns nothing else; imports only node's crypto. Whoever writes or reads an object decides whether it is
// encrypted (its name ends in `.enc`) and passes these streams into its pipeline.
// May import: nothing from src.
export { EncryptionKey, Keyring, KeyError, emptyKeyring, loadKeyFile, parseKeyHex } from './keys.ts';
export { DecryptStream, DecryptionError, EncryptStream, HEADER_BYTES, keyIdOfHeader, saltForContent, type DecryptionProblem, type EncryptOptions } from './stream.ts';

/** What follows the codec's extension in the name of an encrypted object. */
export const ENCRYPTED_SUFFIX = '.enc';
