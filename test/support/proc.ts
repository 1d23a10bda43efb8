// What a process is, read from /proc: for tests that check how a server was started (its account, its sockets).
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The real uid of a process. */
export function processUid(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))!;
  return Number(line.split(/\s+/)[1]);
}

/** Inodes of the TCP sockets (v4 and v6) in LISTEN state on this host. */
function listeningTcpInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A') inodes.add(cols[9]!);
    }
  }
  return inodes;
}

/** Whether the process holds a TCP socket in LISTEN state (IPv4 or IPv6). */
export function listensOnTcp(pid: number): boolean {
  const listening = listeningTcpInodes();
  return readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      return m !== null && listening.has(m[1]!);
    } catch {
      return false;
    }
  });
}
