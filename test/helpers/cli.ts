// Running the `fedlab` CLI from its TypeScript sources (no build needed), as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '../../cli/main.ts');

/**
 * `npm test` builds first and sets FEDLAB_TEST_CLI=dist, so child processes run the compiled CLI (no
 * transpiling at every start); a test file run on its own uses the TypeScript sources through tsx.
 */
const DIST_CLI = join(import.meta.dirname, '../../dist/cli/main.js');

/** Node arguments that start the CLI (before the CLI's own arguments). */
export function cliArgs(): string[] {
  return process.env.FEDLAB_TEST_CLI === 'dist' ? [DIST_CLI] : ['--import', 'tsx', CLI];
}

/** Result of a finished CLI run. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `fedlab ...args` to completion (bounded by `timeoutMs`). */
export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...cliArgs(), ...args], {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fedlab ${args.join(' ')} did not finish in time\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Starts a long-running `fedlab ...args` (e.g. `serve`) and resolves once a JSON log line matches `ready`. */
export function startCli(
  args: string[],
  ready: (line: Record<string, unknown>) => boolean,
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ child: ChildProcess; line: Record<string, unknown>; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...cliArgs(), ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let buffered = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`fedlab ${args.join(' ')} was not ready in time:\n${out}`));
    }, options.timeoutMs ?? 30_000);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (!done && ready(line)) {
          done = true;
          clearTimeout(timer);
          resolve({ child, line, output: () => out });
        }
      }
    });
    child.on('exit', (code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`fedlab ${args.join(' ')} exited with ${code} before it was ready:\n${out}`));
    });
  });
}

/** Waits for a child to exit and gives its exit code (or the signal name). */
export function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
}
