/**
 * One SSH session channel in a sliver: `env` (locale only), `pty-req` and
 * `window-change`, `signal`, then one of `shell`, `exec` or the `sftp`
 * subsystem. Commands run in the sliver as its user through the driver: on a
 * terminal (the driver's PTY exec) after a pty-req, else with their streams
 * attached. Agent and X11 forwarding are refused.
 */
import type { PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { Logger } from '../../core/log.js';
import { TerminalControl } from '../drivers/terminal-control.js';
import type { SliverManager } from '../sliver-manager.js';
import type { Writable } from 'node:stream';
import { capSendWindow, drained, guardChannel, wireClear } from './channel-guard.js';
import { pipeCommand, sendExit, type Traffic } from './channel-pipe.js';

/** Where OpenSSH keeps sftp-server in Debian's openssh-sftp-server (and so in the `host` image). */
export const SFTP_SERVER = '/usr/lib/openssh/sftp-server';
/** What a shell login runs. */
const SHELL: readonly string[] = ['/bin/sh', '-l'];
/** setTimeout's largest delay: "no limit" for a terminal. */
const FOREVER_MS = 2_147_483_647;

/** What a session needs from its connection. */
export interface SessionContext {
  readonly sliverUrn: string;
  readonly slivers: SliverManager;
  readonly traffic: Traffic;
  readonly log: Logger;
  readonly now: () => number;
  /** Longest a command may run (the connection's remaining time), ms. */
  readonly remainingMs: () => number;
  /** Called once when the session is done: closed before a command, or its command ended (the slice's session count drops). */
  readonly onEnd: () => void;
  /** Aborted when the connection ends. */
  readonly signal: AbortSignal;
  /** The connection's socket (its buffer bounds what is written). */
  readonly wire: Writable;
  /** Whether a command may start now (the sliver, the key, the limits; false ends the connection). */
  readonly mayStart: () => boolean;
  /** The peer sent past its window. */
  readonly onOverrun: () => void;
}

const sftpCommand = `if [ -x ${SFTP_SERVER} ]; then exec ${SFTP_SERVER}; fi; echo "this sliver's image has no ${SFTP_SERVER}: sftp and scp cannot work in it" >&2; exit 127`;

/** Serves one accepted session. */
export function serveSession(session: Session, c: SessionContext): void {
  const env: Record<string, string> = {};
  let pty: PseudoTtyInfo | undefined;
  let control: TerminalControl | undefined;
  let started = false;
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    c.onEnd();
  };
  // The client closed the session (ssh2 tells the session at once, the channel only once its input was read).
  const gone = new AbortController();
  session.once('close', () => {
    gone.abort();
    // A command holds the slot until it ended (it is killed now).
    if (!started) end();
  });
  // ssh2 tells a session nothing when its connection drops before a command started: the slot comes back here.
  c.signal.addEventListener(
    'abort',
    () => {
      if (!started) end();
    },
    { once: true },
  );

  session.on('env', (accept, reject, info) => {
    // Locale only: a client's other variables (LD_PRELOAD…) are not the sliver's business.
    if (/^(LANG|LC_[A-Z]+)$/.test(info.key) && info.val.length <= 256 && !started) {
      env[info.key] = info.val;
      accept?.();
    } else reject?.();
  });
  session.on('pty', (accept, reject, info) => {
    if (started) return reject?.();
    // RFC 4254 6.2: zero dimensions are to be ignored (OpenSSH sends them with -tt when its input is
    // not a terminal), so they take the usual 24x80; larger ones are capped.
    pty = { ...info, rows: terminalSide(info.rows, 24), cols: terminalSide(info.cols, 80) };
    accept?.();
  });
  session.on('window-change', (accept, reject, info) => {
    // Without a pty-req there is no terminal to resize (nor one to make).
    if (!pty) return reject?.();
    if (info.rows < 1 || info.cols < 1) return accept?.();
    pty = { ...pty, rows: terminalSide(info.rows, 24), cols: terminalSide(info.cols, 80) };
    try {
      control?.resize(pty.rows, pty.cols);
      accept?.();
    } catch {
      reject?.();
    }
  });
  session.on('signal', (accept, reject, info) => {
    try {
      if (!control) return reject?.();
      control.signal(info.name);
      accept?.();
    } catch {
      reject?.();
    }
  });
  session.on('auth-agent', (_accept, reject) => reject?.());
  session.on('x11', (_accept, reject) => reject?.());

  const run = (argv: readonly string[], accept: () => ServerChannel, reject: (() => void) | undefined, how: string): void => {
    // Checked again here: the connection may have been ended, or the sliver or the key gone, since it opened.
    if (gone.signal.aborted || !c.mayStart()) return reject?.();
    started = true;
    const channel = accept();
    guardChannel(channel, { onOverrun: c.onOverrun, onRemoteClose: () => gone.abort() });
    channel.once('close', () => gone.abort());
    const stop = AbortSignal.any([c.signal, gone.signal]);
    const work = pty ? runTerminal(channel, argv, pty, c, stop, (t) => (control = t), env) : runAttached(channel, argv, c, stop, env);
    work
      .catch((err: unknown) => {
        c.log.info({ sliver: c.sliverUrn, how, err: (err as Error).message }, 'ssh session failed');
        try {
          channel.stderr.write(`fedlab: ${(err as Error).message}\r\n`);
        } catch {
          // Closed already.
        }
        sendExit(channel, { code: 255 });
      })
      .finally(() => {
        try {
          channel.end();
        } catch {
          // Closed already.
        }
        end();
      });
  };
  session.on('shell', (accept, reject) => {
    if (started || !accept) return reject?.();
    run(SHELL, accept, reject, 'shell');
  });
  session.on('exec', (accept, reject, info) => {
    if (started || !accept || info.command.length > 256 * 1024) return reject?.();
    run(['/bin/sh', '-c', info.command], accept, reject, 'exec');
  });
  session.on('subsystem', (accept, reject, info) => {
    if (started || !accept || info.name !== 'sftp') return reject?.();
    // No terminal for a file transfer, even if one was asked for.
    pty = undefined;
    run(['/bin/sh', '-c', sftpCommand], accept, reject, 'sftp');
  });
}

/** A command with its streams on the channel; `stop` (channel closed, connection ended) kills it, also when that came first. */
async function runAttached(
  channel: ServerChannel,
  argv: readonly string[],
  c: SessionContext,
  stop: AbortSignal,
  env: Record<string, string>,
): Promise<void> {
  const cmd = await c.slivers.attach(c.sliverUrn, { argv, env });
  const exit = await pipeCommand(channel, cmd, c.traffic, c.now, c.wire, stop);
  if (stop.aborted) return;
  if (exit.error) channel.stderr.write(`fedlab: ${exit.error}\n`);
  sendExit(channel, exit);
}

async function runTerminal(
  channel: ServerChannel,
  argv: readonly string[],
  pty: PseudoTtyInfo,
  c: SessionContext,
  stop: AbortSignal,
  setControl: (t: TerminalControl) => void,
  env: Record<string, string>,
): Promise<void> {
  const control = new TerminalControl();
  setControl(control);
  channel.on('data', (d: Buffer) => {
    c.traffic.bytesIn += d.length;
    c.traffic.lastActivity = c.now();
    try {
      // The command is not reading (yet): the channel stops taking input, so the client's window closes.
      if (!control.write(d)) {
        channel.pause();
        control.onceDrained(() => channel.resume());
      }
    } catch (err) {
      // Only a caller that wrote on regardless gets here; thrown in ssh2's parser it would end the process.
      c.log.info({ sliver: c.sliverUrn, err: (err as Error).message }, 'ssh terminal input refused');
      channel.close();
    }
  });
  const chunks = await c.slivers.exec(
    c.sliverUrn,
    {
      argv,
      env,
      timeoutMs: Math.max(1, Math.min(FOREVER_MS, c.remainingMs())),
      maxOutputBytes: Number.MAX_SAFE_INTEGER,
      tty: { rows: pty.rows, cols: pty.cols, term: pty.term || 'xterm', control },
    },
    stop,
  );
  for await (const chunk of chunks) {
    if (chunk.kind === 'exit') {
      sendExit(channel, chunk);
      break;
    }
    c.traffic.bytesOut += chunk.data.length;
    c.traffic.lastActivity = c.now();
    capSendWindow(channel);
    if (!channel.write(chunk.data)) await drained(channel);
    await wireClear(c.wire);
  }
}

/** A terminal dimension a client asked for: 0 (unknown) takes `fallback`; at most 4096. */
function terminalSide(asked: number, fallback: number): number {
  return asked < 1 ? fallback : Math.min(asked, 4096);
}
