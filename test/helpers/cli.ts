import { main } from '../../src/cli/main.ts';
import type { TestServer } from './server.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as the one JSON object `--json` promises (throws otherwise). */
  json<T = Record<string, any>>(): T;
}

/** Runs `latchkey <argv>` in-process on the server's own services (and its embedded database). */
export async function cli(server: Pick<TestServer, 'deps'>, argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    env,
    deps: server.deps,
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
  });
  return {
    code,
    stdout,
    stderr,
    json<T>() {
      return JSON.parse(stdout) as T;
    },
  };
}

/** Like cli(), but the command must succeed with --json; returns its object. */
export async function cliJson<T = Record<string, any>>(server: Pick<TestServer, 'deps'>, argv: string[]): Promise<T> {
  const result = await cli(server, [...argv, '--json']);
  if (result.code !== 0) throw new Error(`latchkey ${argv.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  return result.json<T>();
}
