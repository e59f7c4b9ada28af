/**
 * A fake Redis for replies a real server is hard to make give on demand
 * (MOVED, CLUSTERDOWN): it answers the connection's ready check (INFO) like
 * a plain server and every other command with one fixed reply. Only for tests.
 */
import { createServer, type Socket } from 'node:net';

/** A server that answers every command with `reply` (raw RESP), except the connection handshake. */
export async function startFakeServer(reply: string): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk) => {
      // one reply per command (each starts with a RESP array header); INFO (the ready check) gets a plain answer
      const info = 'redis_version:7.0.0\r\nloading:0\r\n';
      const commands = chunk.toString('latin1').split(/(?=\*\d+\r\n)/);
      for (const command of commands) {
        if (!command.startsWith('*')) continue;
        socket.write(/\binfo\b/i.test(command) ? `$${info.length}\r\n${info}\r\n` : reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${address.port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
