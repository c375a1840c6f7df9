import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface CuttableProxy {
  /** The target URL with this proxy's host and port. */
  url: string;
  /** Ends every connection and refuses new ones, as a restart or an outage would. */
  cut(): void;
  /** Keeps connections open but silent, as a network partition would. */
  freeze(): void;
  restore(): void;
  close(): Promise<void>;
}

/** A TCP proxy in front of a test service (Redis, Postgres) that a test can cut or freeze. */
export async function cuttableProxy(targetUrl: string, defaultPort: number): Promise<CuttableProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let open = true;
  let frozen = false;
  const proxy = createServer((client) => {
    if (!open) return void client.destroy();
    const upstream = connect(Number(target.port || defaultPort), target.hostname);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on('data', (chunk) => frozen || to.write(chunk));
      from.on('error', () => {});
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  const cut = () => {
    open = false;
    for (const socket of sockets) socket.destroy();
  };
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    cut,
    freeze: () => void (frozen = true),
    // What a frozen connection dropped would garble its stream: those connections end here.
    restore: () => {
      if (frozen) for (const socket of sockets) socket.destroy();
      frozen = false;
      open = true;
    },
    close: () => {
      cut();
      return new Promise((resolve) => proxy.close(() => resolve()));
    },
  };
}
