// Test support: a TCP proxy standing for a load balancer in front of a
// server, whose connections a test can cut and whose target can move (a
// server restarted on another port).
import net from "node:net";

export interface Proxy {
  port: number;
  /** Sends the next connections to `port`. */
  retarget(port: number): void;
  /** Drops every connection through the proxy. */
  cut(): void;
  /** Connections open through the proxy now. */
  connections(): number;
  close(): Promise<void>;
}

export async function proxyTo(port: number): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  let target = port;
  const server = net.createServer((client) => {
    const upstream = net.connect(target, "127.0.0.1");
    clients.add(client);
    client.on("close", () => clients.delete(client));
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    retarget: (p: number) => void (target = p),
    cut: () => sockets.forEach((s) => s.destroy()),
    connections: () => clients.size,
    close: () => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), server.close(() => resolve()))),
  };
}
