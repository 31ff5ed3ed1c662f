// Debian's OpenSSH tools for tests: client keys made with ssh-keygen, an `ssh -F` config that pins the
// node's published host key (StrictHostKeyChecking yes, BatchMode, IdentitiesOnly: nothing is learned on
// first use and no agent or default key is tried), and ssh/scp/sftp runs with a deadline.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Whether the OpenSSH client tools are installed, and if not why. */
export const opensshCheck: { ok: boolean; reason: string } = ['/usr/bin/ssh', '/usr/bin/scp', '/usr/bin/sftp', '/usr/bin/ssh-keygen'].every(
  (f) => existsSync(f),
)
  ? { ok: true, reason: '' }
  : { ok: false, reason: 'the OpenSSH client is not installed (apt-get install openssh-client)' };

/** A client key pair made with ssh-keygen. */
export interface ClientKey {
  readonly file: string;
  readonly publicLine: string;
}

/** Makes a key pair in `dir` (no passphrase). */
export function makeClientKey(dir: string, name: string, type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519', bits?: number): ClientKey {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', name, '-f', file], {
    stdio: 'pipe',
  });
  return { file, publicLine: readFileSync(`${file}.pub`, 'utf8').trim() };
}

/** Options of {@link writeClientConfig}. */
export interface ClientConfigOptions {
  /** host:port of the endpoint. */
  readonly address: string;
  /** The host key line ("ssh-ed25519 AAAA…") the client must see. */
  readonly hostKey: string;
  readonly identity: string;
  /** The Host alias (default "node"). */
  readonly alias?: string;
  /** Extra lines for the Host block. */
  readonly extra?: readonly string[];
}

/** Writes an ssh config and its known_hosts into `dir`; returns the config's path. */
export function writeClientConfig(dir: string, o: ClientConfigOptions): string {
  const at = o.address.lastIndexOf(':');
  const host = o.address.slice(0, at);
  const port = o.address.slice(at + 1);
  const known = join(dir, `known_hosts-${o.alias ?? 'node'}`);
  writeFileSync(known, `[${host}]:${port} ${o.hostKey}\n`);
  const file = join(dir, `config-${o.alias ?? 'node'}`);
  writeFileSync(
    file,
    [
      `Host ${o.alias ?? 'node'}`,
      `  HostName ${host}`,
      `  Port ${port}`,
      `  UserKnownHostsFile ${known}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  IdentitiesOnly yes',
      '  IdentityAgent none',
      `  IdentityFile ${o.identity}`,
      '  ConnectTimeout 20',
      '  LogLevel ERROR',
      ...(o.extra ?? []).map((l) => `  ${l}`),
      '',
    ].join('\n'),
  );
  return file;
}

/** What one run of an OpenSSH tool gave. */
export interface ToolRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `ssh`, `scp` or `sftp` with a deadline (SIGKILL after it). */
export function runTool(
  tool: 'ssh' | 'scp' | 'sftp',
  args: readonly string[],
  o: { input?: string | Buffer; timeoutMs?: number } = {},
): Promise<ToolRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(tool, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(o.input ?? '');
  });
}

/** An OpenSSH client running on a terminal of its own (node-pty), as a person would run it. */
export interface TerminalClient {
  write(data: string): void;
  resize(rows: number, cols: number): void;
  output(): string;
  /** Waits until the output since `from` matches. */
  until(re: RegExp, from?: number, ms?: number): Promise<void>;
  readonly exit: Promise<number>;
  kill(): void;
}

/** Starts `ssh args` on a terminal of `rows` x `cols`. */
export async function sshOnTerminal(args: readonly string[], rows = 24, cols = 80): Promise<TerminalClient> {
  const { spawn: spawnPty } = await import('@lydell/node-pty');
  const term = spawnPty('ssh', [...args], { name: 'xterm', rows, cols, cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let out = '';
  term.onData((d) => (out += d));
  const exit = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
  return {
    write: (d) => term.write(d),
    resize: (r, c) => term.resize(c, r),
    output: () => out,
    until: async (re, from = 0, ms = 15_000) => {
      const end = Date.now() + ms;
      while (!re.test(out.slice(from))) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${re} in: ${JSON.stringify(out.slice(-400))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    exit,
    kill: () => term.kill('SIGKILL'),
  };
}
