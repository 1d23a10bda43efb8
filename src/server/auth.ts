// Credentials for the routes that can change things (bull-board retries, removes and pauses jobs) and, unless
// [server] public_read = on, for the read-only ones too: HTTP Basic with [server] user/password, or
// `Authorization: Bearer <[server] token>`. Compared in constant time; never logged. Mutating requests are also
// held to the server's own origin (sameOriginOnly).
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { ConfigError, type ServerConfig } from '../config/index.ts';
import type { Logger } from '../log/index.ts';

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

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/**
 * The read-only routes (status page, /api GETs, /metrics): open when no credentials are configured (the server
 * then listens on loopback only, see assertSafeListen) or with [server] public_read = on; else like requireAuth.
 */
export function requireReadAuth(server: ServerConfig): Middleware {
  if (!hasCredentials(server) || server.publicRead) return (_req, _res, next) => next();
  return requireAuth(server);
}

/** host[:port] as a URL of `protocol` writes it (default port left out), or undefined when it is no host. */
function normalHost(protocol: string, host: string): string | undefined {
  try {
    return new URL(`${protocol}//${host}`).host;
  } catch {
    return undefined;
  }
}

/** The origin a browser says a request comes from does not match the host the request was sent to. */
function isOtherOrigin(source: string, req: Request): boolean {
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    return true; // "null" (sandboxed frames, privacy redirects) or garbage: no proof of our own page
  }
  // A reverse proxy that rewrites Host passes the browser's in X-Forwarded-Host. A cross-origin page cannot set
  // that header: it is not CORS-safelisted, and this server answers no preflight.
  const forwarded = req.get('x-forwarded-host')?.split(',')[0]?.trim();
  const hosts = [req.get('host'), forwarded].filter((h): h is string => Boolean(h)).map((h) => normalHost(url.protocol, h));
  return !hosts.includes(url.host);
}

/** Why a mutating request is not from this server's own pages, or undefined when nothing says it is not. */
function crossOriginReason(req: Request): string | undefined {
  const origin = req.get('origin');
  if (origin !== undefined && isOtherOrigin(origin, req)) return `Origin ${origin}`;
  const site = req.get('sec-fetch-site')?.toLowerCase();
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site: ${site}`;
  const referer = req.get('referer');
  if (origin === undefined && referer !== undefined && isOtherOrigin(referer, req)) return 'a Referer of another origin';
  return undefined;
}

/**
 * Mutating requests only from this server's own pages. A browser remembers Basic credentials for the host and
 * sends them with every request to it, also one another site's page makes it send (a form posted to
 * /queues/api/.../retry): without this check, any page a logged-in DBA opens could retry, remove or pause jobs
 * (CSRF). Browsers say where a request comes from (Origin, Sec-Fetch-Site, else Referer); a request that says
 * nothing (curl, scripts) is not a browser's and is let through to the credentials check.
 */
export function sameOriginOnly(log: Logger): Middleware {
  return (req, res, next) => {
    const reason = crossOriginReason(req)?.slice(0, 200); // it quotes a header the client chose
    if (reason === undefined) return next();
    log.warn({ event: 'server.cross-origin-refused', method: req.method, path: req.path, reason }, `refused a cross-origin ${req.method} ${req.path}`);
    res.status(403).type('text/plain').send(
      `cross-origin request refused (${reason}, this server is ${req.get('host') ?? '?'}): requests that change something are accepted only from this server's own pages\n`,
    );
  };
}
