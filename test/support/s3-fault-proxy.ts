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
}

/**
 * corrupt: GET answered with one byte of the body flipped (same length);
 * short: HEAD and GET answered with the first half of the object, as if it were that long;
 * cut: GET answered with the full length declared, half of the body sent, then the connection reset.
 */
export type S3Fault = 'corrupt' | 'short' | 'cut';

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
    };
    proxy.calls.push(call);

    const partNumber = Number(url.searchParams.get('partNumber') ?? 0);
    if (call.method === 'PUT' && proxy.maxParts !== undefined && partNumber > proxy.maxParts) {
      req.resume();
      req.on('end', () => refusePart(res, partNumber, proxy.maxParts!));
      return;
    }

    const fault = proxy.fault(call);
    const upstream = http.request({ host: targetHost, port: targetPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      if (!fault || up.statusCode !== 200 || !['GET', 'HEAD'].includes(call.method)) {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', () => answerWithFault(fault, call.method, up, Buffer.concat(chunks), res));
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  return proxy;
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
    res.writeHead(200, { ...headers, 'content-length': String(wrong.length) });
    res.end(wrong);
    return;
  }
  // cut: the client was promised the whole object and gets half, then a reset.
  res.writeHead(200, { ...headers, 'content-length': String(body.length) });
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
