/**
 * Moving bytes between an SSH channel and a command, counted for the login
 * log and with backpressure both ways: a slow client pauses the command's
 * output, a slow command pauses the client's input.
 */
import type { Readable, Writable } from 'node:stream';
import type { ServerChannel } from 'ssh2';
import type { AttachedCommand, AttachedExit } from '../drivers/driver.js';

/** Bytes that crossed a connection, and when anything last did. */
export interface Traffic {
  bytesIn: number;
  bytesOut: number;
  lastActivity: number;
}

/** Resolves when `w` can take more, or when it closed. */
export function drained(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.once('drain', done);
    w.once('close', done);
  });
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
 * Connects a channel to an attached command until it ends: the client's
 * input to its stdin (EOF closes it), its stdout and stderr back; then its
 * exit. A channel closed by the client kills the command.
 */
export async function pipeCommand(
  channel: ServerChannel,
  cmd: AttachedCommand,
  traffic: Traffic,
  now: () => number,
): Promise<AttachedExit> {
  const countIn = (d: Buffer): void => {
    traffic.bytesIn += d.length;
    traffic.lastActivity = now();
  };
  const countOut = (d: Buffer): void => {
    traffic.bytesOut += d.length;
    traffic.lastActivity = now();
  };
  channel.on('data', countIn);
  channel.pipe(cmd.stdin);
  cmd.stdout.on('data', countOut);
  cmd.stderr.on('data', countOut);
  cmd.stdout.pipe(channel, { end: false });
  cmd.stderr.pipe(channel.stderr, { end: false });
  const onClose = (): void => void cmd.kill();
  channel.once('close', onClose);
  const exit = await cmd.exit;
  const grace = new Promise<void>((r) => setTimeout(r, DRAIN_GRACE_MS).unref());
  await Promise.race([Promise.all([finished(cmd.stdout), finished(cmd.stderr)]), grace]);
  channel.off('close', onClose);
  channel.unpipe(cmd.stdin);
  cmd.stdout.unpipe(channel);
  cmd.stderr.unpipe(channel.stderr);
  // What its children still run on the pipes goes with it.
  await cmd.kill();
  return exit;
}
