// Moves a daemon's connections to the new primary as soon as the sentinels announce a failover (+switch-master).
// Without this, after a planned failover (SENTINEL FAILOVER) the demoted primary keeps answering as a primary for
// seconds, and what the connections write there is lost. ioredis's own failoverDetector does the same, but when the
// announcement comes while a connection is reconnecting (the usual case when the primary died), it ends that
// connection for good; here only connections that are up are told to reconnect.
import { Redis } from 'ioredis';
import type { RedisConfig } from '../config/index.ts';

/** The announcement of one failover comes from every sentinel: one reconnect per failover is enough. */
const debounceMs = 1000;

class SentinelSwitchWatch {
  private readonly subscribers: Redis[];
  readonly connections = new Set<Redis>();
  private lastSwitch = 0;

  constructor(redis: RedisConfig, reconnectDelay: (times: number) => number) {
    this.subscribers = (redis.sentinels ?? []).map((node) => {
      const sub = new Redis({
        host: node.host,
        port: node.port,
        ...(redis.sentinelPassword !== undefined ? { password: redis.sentinelPassword } : {}),
        retryStrategy: reconnectDelay,
        maxRetriesPerRequest: null,
      });
      sub.on('error', () => undefined); // a sentinel down: the others announce the switch
      sub.subscribe('+switch-master').catch(() => undefined);
      // Message: "<master name> <old ip> <old port> <new ip> <new port>".
      sub.on('message', (_channel: string, message: string) => {
        if (message.split(' ')[0] === redis.sentinelMaster) this.switched();
      });
      return sub;
    });
  }

  private switched(): void {
    if (Date.now() - this.lastSwitch < debounceMs) return;
    this.lastSwitch = Date.now();
    // A connection that is not up is already asking the sentinels where the primary is.
    for (const c of this.connections) if (c.status === 'ready') c.disconnect(true);
  }

  close(): void {
    for (const sub of this.subscribers) sub.disconnect();
  }
}

/** One watch per sentinel set and master name, shared by the process's connections to it. */
const watches = new Map<string, SentinelSwitchWatch>();

/**
 * Makes `redis` follow the switches, and the copies made of it with duplicate() too: a BullMQ Worker runs on
 * copies of the connection it is given (its own and its blocking one), which it closes itself.
 */
export function followSentinelSwitches(redis: Redis, config: RedisConfig, reconnectDelay: (times: number) => number): void {
  let watch = watches.get(config.url);
  if (!watch) {
    watch = new SentinelSwitchWatch(config, reconnectDelay);
    watches.set(config.url, watch);
  }
  watch.connections.add(redis);
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = (override) => {
    const copy = duplicate(override);
    followSentinelSwitches(copy, config, reconnectDelay);
    copy.once('end', () => stopFollowingSentinelSwitches(copy));
    return copy;
  };
}

/** The connection is closing: stop following; the last one closes the sentinel subscriptions. */
export function stopFollowingSentinelSwitches(redis: Redis): void {
  for (const [url, watch] of watches) {
    if (!watch.connections.delete(redis) || watch.connections.size) continue;
    watch.close();
    watches.delete(url);
  }
}
