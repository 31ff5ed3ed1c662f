/**
 * Service processes of a local federation: each one `fedlab serve <role>
 * --config FILE` as a child process, its JSON log lines appended to a file,
 * ready when it logs `listening`, stopped with SIGTERM, then SIGKILL after a
 * grace period. The children get their own process group, so a Ctrl-C in the
 * terminal reaches only `fedlab up`, which then stops them in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Node arguments that run the `fedlab` entry point: the compiled one next to this file, else the TypeScript source through tsx. */
export function defaultFedlabArgs(): string[] {
  const cliDir = join(dirname(fileURLToPath(import.meta.url)), '..');
  const compiled = join(cliDir, 'main.js');
  if (existsSync(compiled)) return [compiled];
  // tsx resolved from here, not from the working directory: `fedlab up` may run from anywhere.
  return ['--import', import.meta.resolve('tsx'), join(cliDir, 'main.ts')];
}

/** A free TCP port on 127.0.0.1 at the time of the call (servers that must know their port before they start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Whether something listens on 127.0.0.1:port (so a reused port plan would clash). */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(true));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
  });
}

/** Options of a {@link ServiceProcess}. */
export interface ServiceProcessOptions {
  /** Short name for messages and the log file (e.g. `plc.test/ma`). */
  readonly name: string;
  readonly role: 'nm' | 'ma' | 'sa' | 'sp';
  readonly configFile: string;
  readonly logFile: string;
  /** Node arguments that start the `fedlab` CLI. */
  readonly fedlabArgs: readonly string[];
  /** Log level of the service (info by default: one line per call). */
  readonly logLevel?: string;
}

/** One `fedlab serve` child process. */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  private log: WriteStream | undefined;
  private tail: string[] = [];
  private readonly lastSeen = new Map<string, Record<string, unknown>>();
  private exitPromise: Promise<void> | undefined;
  private lineWatchers: ((line: Record<string, unknown>) => void)[] = [];

  constructor(readonly options: ServiceProcessOptions) {}

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.running() ? this.child?.pid : undefined;
  }

  /** Whether the child is alive. */
  running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** The last log line the service wrote with this message (e.g. `node manager ready`), if any. */
  seen(msg: string): Record<string, unknown> | undefined {
    return this.lastSeen.get(msg);
  }

  /** The last lines the service wrote (for error messages). */
  lastLines(n = 15): string {
    return this.tail.slice(-n).join('\n');
  }

  /** Starts the service and resolves when it logs `listening`; rejects (with its last lines) if it exits or takes longer than `timeoutMs`. */
  start(timeoutMs = 60_000): Promise<void> {
    if (this.running()) return Promise.resolve();
    this.log = createWriteStream(this.options.logFile, { flags: 'a', mode: 0o600 });
    const args = [
      ...this.options.fedlabArgs,
      'serve',
      this.options.role,
      '--config',
      this.options.configFile,
      ...(this.options.logLevel ? ['--log-level', this.options.logLevel] : []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    this.exitPromise = new Promise((resolve) => child.once('exit', () => resolve()));
    const log = this.log;
    let buffered = '';
    const onData = (data: Buffer): void => {
      log.write(data);
      buffered += data.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.tail.push(text.length > 400 ? `${text.slice(0, 400)}…` : text);
        if (this.tail.length > 50) this.tail.shift();
        let line: Record<string, unknown> | undefined;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          line = undefined;
        }
        if (line && typeof line.msg === 'string') {
          this.lastSeen.set(line.msg, line);
          for (const w of this.lineWatchers) w(line);
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => log.end());
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.lineWatchers = this.lineWatchers.filter((w) => w !== watcher);
        if (err) reject(err);
        else resolve();
      };
      const watcher = (line: Record<string, unknown>): void => {
        if (line.msg === 'listening') finish();
      };
      this.lineWatchers.push(watcher);
      const timer = setTimeout(() => {
        this.killNow();
        finish(
          new Error(
            `${this.options.name} was not ready within ${Math.round(timeoutMs / 1000)} s; its log ${this.options.logFile} ends with:\n${this.lastLines()}`,
          ),
        );
      }, timeoutMs);
      child.once('error', (err) => finish(new Error(`${this.options.name} could not start: ${err.message}`)));
      child.once('exit', (code, signal) =>
        finish(
          new Error(
            `${this.options.name} exited (${code ?? signal}) before it was ready; its log ${this.options.logFile} ends with:\n${this.lastLines()}`,
          ),
        ),
      );
    });
  }

  /** Resolves with the next log line with this message (rejects after `timeoutMs`). */
  nextLine(msg: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.lineWatchers = this.lineWatchers.filter((w) => w !== watcher);
        reject(new Error(`${this.options.name} did not log "${msg}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const watcher = (line: Record<string, unknown>): void => {
        if (line.msg !== msg) return;
        clearTimeout(timer);
        this.lineWatchers = this.lineWatchers.filter((w) => w !== watcher);
        resolve(line);
      };
      this.lineWatchers.push(watcher);
    });
  }

  /** Resolves once the child has exited (immediately if it is not running). */
  exited(): Promise<void> {
    return this.running() && this.exitPromise ? this.exitPromise : Promise.resolve();
  }

  private killNow(): void {
    const c = this.child;
    if (c?.pid === undefined || !this.running()) return;
    try {
      // The whole process group: the service and anything it forked that did not detach on purpose.
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      c.kill('SIGKILL');
    }
  }

  /** kill -9, then wait until it is gone. */
  async kill9(): Promise<void> {
    if (!this.running()) return;
    const gone = this.exited();
    this.killNow();
    await gone;
  }

  /** SIGTERM, wait up to `graceMs`, then SIGKILL. Says whether it had to kill. */
  async stop(graceMs = 10_000): Promise<'stopped' | 'killed' | 'not-running'> {
    const c = this.child;
    if (!c || !this.running()) return 'not-running';
    const gone = this.exited();
    c.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      gone.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (!timedOut) return 'stopped';
    this.killNow();
    await gone;
    return 'killed';
  }

  /** Last resort on process exit: SIGKILL synchronously, no waiting. */
  killSync(): void {
    this.killNow();
  }
}
