/**
 * Runs TypeScript files as separate Node processes (through tsx) and talks to
 * them over IPC, for tests and benchmarks that must cross process boundaries.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';

export interface Peer {
  readonly child: ChildProcess;
  /** Sends a message to the peer's `process.on('message')`. */
  send(message: unknown): void;
  /** Resolves with the next message for which `match` returns true. */
  next<T = Record<string, unknown>>(match?: (message: T) => boolean, timeoutMs?: number): Promise<T>;
  /** Sends `command` and resolves with the next message whose `ev` is `answer`. */
  ask<T = Record<string, unknown>>(command: unknown, answer: string, timeoutMs?: number): Promise<T>;
  /** Every message received so far. */
  readonly received: unknown[];
  /** Sends SIGKILL and waits for the exit. */
  kill(): Promise<void>;
  /** Waits for the exit and returns the code. */
  exited(): Promise<number | null>;
}

/** Forks `file` (relative to the repository root) with tsx and the given environment. */
export function spawnPeer(file: string, env: Record<string, string> = {}, args: string[] = []): Peer {
  const child = fork(resolve(__dirname, '..', '..', file), args, {
    // for benchmark investigations: INTRACOM_PEER_PROFILE=<dir> writes a CPU profile of every peer,
    // INTRACOM_PEER_NODE_FLAGS="--trace-gc ..." passes flags to every peer
    execArgv: ['--import', 'tsx', ...(process.env.INTRACOM_PEER_NODE_FLAGS?.split(' ').filter(Boolean) ?? []), ...(process.env.INTRACOM_PEER_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.INTRACOM_PEER_PROFILE}`] : [])],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  const received: unknown[] = [];
  const waiters: Array<{ match: (m: unknown) => boolean; resolve: (m: unknown) => void }> = [];
  let cursor = 0;
  child.on('message', (message) => {
    received.push(message);
    const index = waiters.findIndex((w) => w.match(message));
    if (index !== -1) {
      const [waiter] = waiters.splice(index, 1);
      waiter.resolve(message);
    }
  });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  const peer: Peer = {
    child,
    received,
    send(message) {
      child.send(message as never);
    },
    next<T>(match: (message: T) => boolean = () => true, timeoutMs = 15_000): Promise<T> {
      for (; cursor < received.length; cursor++) {
        if (match(received[cursor] as T)) return Promise.resolve(received[cursor++] as T);
      }
      return new Promise<T>((resolvePromise, reject) => {
        const timer = setTimeout(() => reject(new Error(`peer ${file} sent no matching message within ${timeoutMs} ms`)), timeoutMs);
        const onExit = (code: number | null) => reject(new Error(`peer ${file} exited with ${code} before sending a matching message`));
        child.once('exit', onExit);
        waiters.push({
          match: (m) => match(m as T),
          resolve: (m) => {
            clearTimeout(timer);
            child.off('exit', onExit);
            cursor = received.length;
            resolvePromise(m as T);
          },
        });
      });
    },
    ask<T>(command: unknown, answer: string, timeoutMs?: number): Promise<T> {
      child.send(command as never);
      return peer.next<T & { ev: string }>((m) => m.ev === answer, timeoutMs);
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exit;
      }
    },
    exited() {
      return exit;
    },
  };
  return peer;
}

/** Runs a TypeScript file (relative to the repository root) to its end, as `node --import tsx <file> <args>`; rejects on a non-zero exit. */
export async function runTs(file: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env, timeoutMs = 50_000): Promise<{ stdout: string; stderr: string }> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolvePromise, reject) => {
    execFile(process.execPath, ['--import', 'tsx', resolve(__dirname, '..', '..', file), ...args], { env, timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }));
      else resolvePromise({ stdout, stderr });
    });
  });
}
