/**
 * Moving bytes between an SSH channel and a command, counted for the login
 * log and with backpressure both ways: a slow client (its window, or the
 * connection's socket) pauses the command's output, a slow command pauses the
 * client's input (see channel-guard.ts for what ssh2 leaves undone).
 */
import type { Readable, Writable } from 'node:stream';
import type { ServerChannel } from 'ssh2';
import type { AttachedCommand, AttachedExit } from '../drivers/driver.js';
import { pump } from './channel-guard.js';

/** Bytes that crossed a connection, and when anything last did. */
export interface Traffic {
  bytesIn: number;
  bytesOut: number;
  lastActivity: number;
}

/** Resolves once a readable ended or closed. */
function finished(r: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (r.readableEnded || r.destroyed) return resolve();
    r.once('end', resolve);
    r.once('close', resolve);
  });
}

/** How long output may keep coming after the command exited (from children that kept its pipes). */
const DRAIN_GRACE_MS = 300;

/** Sends an exit to the client: exit-status, or exit-signal for a command killed by one. */
export function sendExit(channel: ServerChannel, exit: { code?: number; signal?: string }): void {
  try {
    if (exit.signal) channel.exit(exit.signal.replace(/^SIG/, ''), false, '');
    else channel.exit(exit.code ?? 0);
  } catch {
    // The channel closed first: nobody is left to tell.
  }
}

/**
 * Kills `cmd` when `signal` aborts — at once when it already has (a command
 * that registers after its connection or channel ended must not run on).
 */
export function killOnAbort(signal: AbortSignal, cmd: Pick<AttachedCommand, 'kill'>): () => void {
  const onAbort = (): void => void cmd.kill();
  if (signal.aborted) {
    onAbort();
    return () => undefined;
  }
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/**
 * Connects a channel to an attached command until it ends: the client's
 * input to its stdin (EOF closes it), its stdout and stderr back (waiting
 * while the channel's window or `wire`, the connection's socket, is full);
 * then its exit. `gone` (the channel closed, the connection ended) kills it.
 */
export async function pipeCommand(
  channel: ServerChannel,
  cmd: AttachedCommand,
  traffic: Traffic,
  now: () => number,
  wire: Writable,
  gone: AbortSignal,
): Promise<AttachedExit> {
  const countIn = (d: Buffer): void => {
    traffic.bytesIn += d.length;
    traffic.lastActivity = now();
  };
  const countOut = (d: Buffer): void => {
    traffic.bytesOut += d.length;
    traffic.lastActivity = now();
  };
  const unkill = killOnAbort(gone, cmd);
  channel.on('data', countIn);
  channel.pipe(cmd.stdin);
  const stopOut = pump(cmd.stdout, channel, channel, wire, countOut);
  const stopErr = pump(cmd.stderr, channel.stderr, channel, wire, countOut);
  const exit = await cmd.exit;
  const grace = new Promise<void>((r) => setTimeout(r, DRAIN_GRACE_MS).unref());
  await Promise.race([Promise.all([finished(cmd.stdout), finished(cmd.stderr)]), grace]);
  unkill();
  channel.unpipe(cmd.stdin);
  channel.off('data', countIn);
  stopOut();
  stopErr();
  // What its children still run on the pipes goes with it.
  await cmd.kill();
  return exit;
}
