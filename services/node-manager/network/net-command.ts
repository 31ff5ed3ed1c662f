/**
 * Running `ip` and `nft` for the sliver network: by absolute path, with a
 * fixed environment, every value a separate argument (never a shell), and a
 * deadline on every call. Failures become typed errors naming the command:
 * a missing tool or a refused change is FAILED_PRECONDITION, a call that
 * outlives its deadline DEADLINE_EXCEEDED.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { DeadlineExceededError, FailedPreconditionError } from '../../core/errors.js';

/** The environment of every network tool: nothing of the node manager's own. */
const TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' } as const;

/** Where the tools are looked for, in order. */
const TOOL_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** A command that failed: its tool, arguments and what it said. */
export class NetworkCommandError extends FailedPreconditionError {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly code: number | string | undefined,
  ) {
    super(`${command} failed: ${stderr.trim().split('\n').slice(0, 3).join('; ') || `exit ${String(code)}`}`, { command });
  }

  /** Whether the tool said the object it was asked about does not exist. */
  get notFound(): boolean {
    return /No such file or directory|Cannot find device|does not exist|not found|No such process/i.test(this.stderr);
  }
}

/** Finds a tool's absolute path, or says which package holds it. */
export function findTool(name: 'ip' | 'nft' | 'sysctl' | 'flock'): string {
  for (const dir of TOOL_DIRS) if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  const pkg = { ip: 'iproute2', nft: 'nftables', sysctl: 'procps', flock: 'util-linux' }[name];
  throw new FailedPreconditionError(`the sliver network needs ${name}, which is missing; install it: apt-get install ${pkg}`);
}

/** Runs the network tools with a deadline each. */
export class NetCommands {
  private ipPath?: string;
  private nftPath?: string;

  constructor(readonly timeoutMs = 5_000) {}

  /** `ip <args>`; resolves with its standard output. */
  ip(args: readonly string[], input?: string): Promise<string> {
    this.ipPath ??= findTool('ip');
    return this.run(this.ipPath, args, input);
  }

  /** `ip -j <args>` parsed (an empty answer is an empty list). */
  async ipJson<T>(args: readonly string[]): Promise<T[]> {
    const out = await this.ip(['-j', ...args]);
    return out.trim() === '' ? [] : (JSON.parse(out) as T[]);
  }

  /** Sets kernel parameters inside a named network namespace (`ip netns exec <ns> sysctl -qw k=v ...`). */
  sysctlIn(ns: string, settings: Readonly<Record<string, string>>): Promise<string> {
    const sysctl = findTool('sysctl');
    return this.ip(['netns', 'exec', ns, sysctl, '-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
  }

  /** `nft <args>`; resolves with its standard output. */
  nft(args: readonly string[]): Promise<string> {
    this.nftPath ??= findTool('nft');
    return this.run(this.nftPath, args);
  }

  /** `nft -f -` with a script: applied as one transaction (all or nothing). */
  nftScript(script: string): Promise<string> {
    this.nftPath ??= findTool('nft');
    return this.run(this.nftPath, ['-f', '-'], script);
  }

  /** `nft -j <args>` parsed into its list of objects. */
  async nftJson(args: readonly string[]): Promise<Record<string, unknown>[]> {
    const out = await this.nft(['-j', ...args]);
    return (JSON.parse(out) as { nftables?: Record<string, unknown>[] }).nftables ?? [];
  }

  private run(file: string, args: readonly string[], input?: string): Promise<string> {
    const shown = `${file.split('/').pop() ?? file} ${args.join(' ')}`.slice(0, 300);
    return new Promise((resolve, reject) => {
      const child = execFile(
        file,
        [...args],
        { env: TOOL_ENV, timeout: this.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string };
          if (e.killed || e.signal === 'SIGKILL') {
            reject(new DeadlineExceededError(`${shown} did not finish within ${this.timeoutMs} ms`, { command: shown }));
          } else reject(new NetworkCommandError(shown, stderr || e.message, e.code ?? undefined));
        },
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  }
}
