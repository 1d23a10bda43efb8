// Credentials for the routes that can change things (bull-board retries, removes and pauses jobs):
// HTTP Basic with [server] user/password, or `Authorization: Bearer <[server] token>`. Compared in constant
// time; never logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { ConfigError, type ServerConfig } from '../config/index.ts';

function same(a: string, b: string): boolean {
  // Hash both so the comparison is constant-time whatever the lengths.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

export function hasCredentials(server: ServerConfig): boolean {
  return Boolean(server.token || (server.user && server.password));
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/** A server reachable from other hosts must not hand out job control: refuse to start without credentials. */
export function assertSafeListen(server: ServerConfig, file: string): void {
  if (!isLoopback(server.listen.host) && !hasCredentials(server)) {
    throw new ConfigError(
      `[server] listen = ${server.listen.host}:${server.listen.port} in ${file} is not a loopback address: ` +
        'set [server] user and password (or MCB_SERVER_USER/MCB_SERVER_PASSWORD) or token (MCB_SERVER_TOKEN), or listen on 127.0.0.1',
    );
  }
}

export function authorized(server: ServerConfig, header: string | undefined): boolean {
  if (!header) return false;
  const [scheme, value = ''] = header.split(' ', 2) as [string, string?];
  if (scheme.toLowerCase() === 'bearer' && server.token) return same(value.trim(), server.token);
  if (scheme.toLowerCase() === 'basic' && server.user && server.password) {
    const decoded = Buffer.from(value.trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return false;
    // Evaluate both comparisons, so timing does not tell which half was wrong.
    const userOk = same(decoded.slice(0, i), server.user);
    const passwordOk = same(decoded.slice(i + 1), server.password);
    return userOk && passwordOk;
  }
  return false;
}

/** Express middleware: 401 with a Basic challenge (so browsers ask) unless the request carries valid credentials. */
export function requireAuth(server: ServerConfig) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (hasCredentials(server) && authorized(server, req.headers.authorization)) return next();
    res.setHeader('WWW-Authenticate', 'Basic realm="mcb", charset="UTF-8"');
    res.status(401).type('text/plain').send(
      hasCredentials(server)
        ? 'authentication required: HTTP Basic ([server] user/password) or Authorization: Bearer <[server] token>\n'
        : 'this route needs credentials and none are configured: set [server] user/password or token\n',
    );
  };
}
