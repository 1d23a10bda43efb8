// An HTTP proxy in front of the real S3 server (moto) that answers some requests wrongly, the way a faulty store
// or network does: an object served with a byte changed, an object reported and served shorter than it is, a
// download cut mid-body (the connection reset after half of the declared length), or a part number above a
// configured limit refused with S3's own error. Every other request, and every upload, passes unchanged; each
// request is recorded, so a test can count parts, uploads and deletes.
import http from 'node:http';
import type net from 'node:net';

export interface S3Call {
  method: string;
  bucket: string;
  key?: string;
  query: URLSearchParams;
  /** The request body's declared length (a part's size, for part uploads). */
  bytes: number;
  /** The Range header of a GET of part of an object. */
  range?: string;
  /** The Content-MD5 header of an upload. */
  contentMd5?: string;
  /** When the request arrived and when its answer was sent (performance.now()), to see requests in flight. */
  startedAt: number;
  endedAt?: number;
}

/**
 * corrupt: GET (of the whole object or a range) answered with one byte of the body flipped (same length);
 * short: HEAD and GET answered with the first half of the object, as if it were that long;
 * cut: GET (whole or range) answered with the full length declared, half of the body sent, then the connection reset;
 * damage: a PUT (an object or a part) forwarded with one byte of its body flipped, as a faulty network would.
 */
export type S3Fault = 'corrupt' | 'short' | 'cut' | 'damage';

export interface S3FaultProxy {
  port: number;
  calls: S3Call[];
  /** The fault for a request about to be forwarded; undefined (the default) passes it through. */
  fault: (call: S3Call) => S3Fault | undefined;
  /** Part numbers above this are refused as S3 refuses parts above 10,000 (undefined: no limit of its own). */
  maxParts?: number;
  close(): Promise<void>;
}

export async function startS3FaultProxy(targetHost: string, targetPort: number): Promise<S3FaultProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: S3FaultProxy = {
    port: 0,
    calls: [],
    fault: () => undefined,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
    const call: S3Call = {
      method: req.method ?? 'GET',
      bucket,
      key: rest.length ? decodeURIComponent(rest.join('/')) : undefined,
      query: url.searchParams,
      bytes: Number(req.headers['content-length'] ?? 0),
      range: req.headers.range,
      contentMd5: req.headers['content-md5'] as string | undefined,
      startedAt: performance.now(),
    };
    proxy.calls.push(call);
    res.on('close', () => (call.endedAt = performance.now()));

    const partNumber = Number(url.searchParams.get('partNumber') ?? 0);
    if (call.method === 'PUT' && proxy.maxParts !== undefined && partNumber > proxy.maxParts) {
      req.resume();
      req.on('end', () => refusePart(res, partNumber, proxy.maxParts!));
      return;
    }

    const fault = proxy.fault(call);
    const upstream = http.request({ host: targetHost, port: targetPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      if (!fault || (up.statusCode !== 200 && up.statusCode !== 206) || !['GET', 'HEAD'].includes(call.method)) {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', () => answerWithFault(fault, call.method, up, Buffer.concat(chunks), res));
    });
    upstream.on('error', () => res.destroy());
    if (fault === 'damage' && call.method === 'PUT') forwardDamaged(req, upstream);
    else req.pipe(upstream);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  return proxy;
}

/** The request body with its middle byte flipped (same length). */
function forwardDamaged(req: http.IncomingMessage, upstream: http.ClientRequest): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (body.length) body[Math.floor(body.length / 2)]! ^= 0xff;
    upstream.end(body);
  });
}

function answerWithFault(fault: S3Fault, method: string, up: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
  const headers = { ...up.headers };
  delete headers['transfer-encoding'];
  const declared = Number(up.headers['content-length'] ?? body.length);
  if (fault === 'short') {
    const half = Math.floor(declared / 2);
    res.writeHead(200, { ...headers, 'content-length': String(half) });
    res.end(method === 'GET' ? body.subarray(0, half) : undefined);
    return;
  }
  if (method !== 'GET') {
    res.writeHead(200, headers);
    res.end();
    return;
  }
  if (fault === 'corrupt') {
    const wrong = Buffer.from(body);
    if (wrong.length) wrong[Math.floor(wrong.length / 2)]! ^= 0xff;
    res.writeHead(up.statusCode!, { ...headers, 'content-length': String(wrong.length) });
    res.end(wrong);
    return;
  }
  // cut: the client was promised the whole object and gets half, then a reset.
  res.writeHead(up.statusCode!, { ...headers, 'content-length': String(body.length) });
  res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
}

function refusePart(res: http.ServerResponse, partNumber: number, maxParts: number): void {
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code>' +
    `<Message>Part number must be an integer between 1 and ${maxParts}, inclusive</Message>` +
    `<ArgumentName>partNumber</ArgumentName><ArgumentValue>${partNumber}</ArgumentValue></Error>`;
  res.writeHead(400, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(xml)) });
  res.end(xml);
}
