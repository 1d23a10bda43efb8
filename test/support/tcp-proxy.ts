// A TCP proxy in front of a real service, that a test can take down (connections refused and cut) and
// bring back: a real outage of the S3 server as the client sees it, without stopping the shared server.
// It can also go down, or stall (hold every byte, connections open, as a hung network does), at the moment a
// given number of bytes has been sent to the service: mid-upload, without racing the client.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  connections: number;
  /** Bytes sent by clients to the service so far. */
  bytesToTarget: number;
  down(): void;
  /** Brings the service back after down() or stall(). */
  up(): void;
  /** Holds every byte from clients (open connections stay open, new ones are accepted and held too). */
  stall(): void;
  /** Calls down() (or stall()) once `bytes` more have been sent to the service; resolves when it happened. */
  after(bytes: number, action: 'down' | 'stall'): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let isDown = false;
  let stalled = false;
  let trigger: { at: number; fire: () => void } | undefined;
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const proxy: TcpProxy = {
    port: 0,
    connections: 0,
    bytesToTarget: 0,
    down() {
      isDown = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
      clients.clear();
    },
    up() {
      isDown = false;
      stalled = false;
      for (const c of clients) c.resume();
    },
    stall() {
      stalled = true;
      for (const c of clients) c.pause();
    },
    after(bytes, action) {
      return new Promise((resolve) => {
        trigger = {
          at: proxy.bytesToTarget + bytes,
          fire: () => {
            trigger = undefined;
            proxy[action]();
            resolve();
          },
        };
      });
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((client) => {
    proxy.connections++;
    if (isDown) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    clients.add(client);
    if (stalled) client.pause();
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      clients.delete(client);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    // Not pipe(): pipe resumes a paused source on drain, which would end a stall.
    client.on('data', (chunk: Buffer) => {
      proxy.bytesToTarget += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => {
          if (!stalled) client.resume();
        });
      }
      if (trigger && proxy.bytesToTarget >= trigger.at) trigger.fire();
    });
    client.on('end', () => upstream.end());
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  return proxy;
}
