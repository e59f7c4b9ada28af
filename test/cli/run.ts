/** Runs the `intracom` CLI as a process (through tsx, as `npx intracom` would run the built file). */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const MAIN = join(__dirname, '..', '..', 'src', 'cli', 'main.ts');

export interface CliRun {
  readonly child: ChildProcess;
  /** Resolves with the exit code and everything printed. */
  readonly result: Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Resolves once stderr contains `text`. */
  stderrIncludes(text: string, timeoutMs?: number): Promise<void>;
}

/** Starts the CLI with `args`; REDIS_URL is removed from its environment unless given in `env`. */
export function startCli(args: string[], env: Record<string, string> = {}): CliRun {
  const environment: NodeJS.ProcessEnv = { ...process.env, INTRACOM_LOG_LEVEL: 'silent', ...env };
  if (env.REDIS_URL === undefined) delete environment.REDIS_URL;
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const listener of [...listeners]) listener();
  });
  const result = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return {
    child,
    result,
    stderrIncludes(text, timeoutMs = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!stderr.includes(text)) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`the CLI did not print ${JSON.stringify(text)} on stderr within ${timeoutMs} ms; stderr: ${stderr}`));
        }, timeoutMs);
        listeners.add(check);
        check();
        void result.then(() => {
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`the CLI exited before printing ${JSON.stringify(text)}; stderr: ${stderr}`));
          }
        });
      });
    },
  };
}

/** Runs the CLI to its end. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return startCli(args, env).result;
}
