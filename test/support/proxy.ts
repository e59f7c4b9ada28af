/**
 * A TCP proxy in front of a test Redis, to stage outages without touching the
 * server: `forward` (a plain pipe), `silent` (accepts and never answers, not
 * even the client's FIN: a hung server or a black-holed network; what is sent
 * meanwhile is lost), `frozen` (holds every byte both ways and delivers them,
 * in order, once forwarding again: a paused or busy Redis), and `down`
 * (refuses connections and cuts the open ones: Redis unreachable). Only for
 * tests.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type ProxyMode = 'forward' | 'silent' | 'frozen' | 'down';

export interface TestProxy {
  /** `redis://127.0.0.1:<port>` of the proxy. */
  readonly url: string;
  readonly port: number;
  /** Switches the mode; `down` cuts every open connection, `silent` keeps them open but stops passing bytes. */
  set(mode: ProxyMode): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Client connections the client has not closed (its FIN or reset ends one, whether or not the proxy closed its side). */
  readonly open: number;
  /** Freezes (mode `frozen`) as soon as a client sends bytes matching `pattern` (as latin1), holding those bytes too. */
  freezeOn(pattern: RegExp): void;
  /** Stops listening and cuts everything. */
  close(): Promise<void>;
}

/** Starts a proxy to `target` (`redis://host:port`), or with no target a server that accepts and never answers. */
export async function startProxy(target?: string, mode: ProxyMode = 'forward'): Promise<TestProxy> {
  const to = target === undefined ? undefined : new URL(target);
  const sockets = new Set<Socket>();
  let current: ProxyMode = target === undefined ? 'silent' : mode;
  let accepted = 0;
  let open = 0;
  let freezeOn: RegExp | undefined;
  /** Per forwarded connection, what `frozen` holds: delivered in order when forwarding resumes. */
  const held: Array<() => void> = [];
  // half-open kept: a silent peer never closes its side when the client closes its own
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    open += 1;
    let gone = false;
    const leave = () => {
      if (!gone) open -= 1;
      gone = true;
    };
    client.once('end', leave);
    client.once('close', leave);
    accepted += 1;
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => sockets.delete(client));
    if (current === 'down') return void client.destroy();
    if (current === 'silent' || current === 'frozen' || to === undefined) return void client.resume(); // read and drop: never answer
    const upstream = connect(Number(to.port), to.hostname);
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    // a FIN passes only while forwarding
    client.on('end', () => current === 'forward' && upstream.end());
    upstream.on('end', () => current === 'forward' && client.end());
    // bytes pass only while forwarding; frozen, they wait
    client.on('data', (chunk: Buffer) => {
      if (current === 'forward' && freezeOn?.test(chunk.toString('latin1'))) {
        freezeOn = undefined;
        current = 'frozen';
      }
      if (current === 'forward') upstream.write(chunk);
      else if (current === 'frozen') held.push(() => upstream.write(chunk));
    });
    upstream.on('data', (chunk: Buffer) => {
      if (current === 'forward') client.write(chunk);
      else if (current === 'frozen') held.push(() => client.write(chunk));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get accepted() {
      return accepted;
    },
    get open() {
      return open;
    },
    set(mode) {
      current = mode;
      if (mode === 'down') for (const socket of sockets.values()) socket.destroy();
      if (mode === 'down') held.length = 0;
      if (mode === 'forward') for (const deliver of held.splice(0)) deliver();
    },
    freezeOn(pattern) {
      freezeOn = pattern;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
