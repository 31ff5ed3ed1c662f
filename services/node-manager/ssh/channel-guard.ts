/**
 * What ssh2 leaves to its user about flow control, done here for every
 * channel: ssh2 writes to the connection's socket whatever the client's
 * window allows and never looks at the socket's own buffer, a client may grow
 * that window without limit with WINDOW_ADJUST, and a client that sends past
 * the window we granted gets its data buffered (the window only goes
 * negative). So output waits while the socket holds more than
 * {@link WIRE_HIGH_WATER}, the send window is capped at
 * {@link MAX_SEND_WINDOW}, and a peer that sends past its window is
 * disconnected.
 */
import type { Readable, Writable } from 'node:stream';
import type { ServerChannel } from 'ssh2';

/** Bytes queued on a connection's socket above which output waits for the socket to drain. */
export const WIRE_HIGH_WATER = 1024 * 1024;
/** The most send window a channel keeps, however much the client granted (it re-grants what it read). */
export const MAX_SEND_WINDOW = 8 * 1024 * 1024;
/**
 * Bytes a channel may hold unread before its peer counts as flooding. An honest peer stays under two
 * windows (ssh2 grants 2 MiB, and re-grants only while under its 2 MiB high-water mark); twice that for margin.
 */
const MAX_INBOUND_BUFFER = 8 * 1024 * 1024;

/** ssh2's window bookkeeping of a channel (not in its types). */
interface Windows {
  readonly incoming: { window: number; state: string };
  readonly outgoing: { window: number; state: string };
}

const windowsOf = (c: ServerChannel): Windows => c as unknown as Windows;

/** What a guarded channel reports. */
export interface GuardEvents {
  /** The peer sent past the window it was granted, or flooded the channel: disconnect it. */
  readonly onOverrun: () => void;
  /** The peer closed the channel (CHANNEL_CLOSE; ssh2 emits `close` only once the input was read to its end). */
  readonly onRemoteClose: () => void;
}

/**
 * Watches what ssh2 pushes into a channel: data that overran the window
 * (ssh2 subtracts first, so the window is negative) or the buffer, and the
 * peer's CHANNEL_CLOSE (ssh2 marks the channel closed, then pushes its end).
 */
export function guardChannel(channel: ServerChannel, on: GuardEvents): void {
  const w = windowsOf(channel);
  const push = channel.push.bind(channel);
  let reported = false;
  channel.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null) {
      if (w.incoming.state === 'closed' && !reported) {
        reported = true;
        on.onRemoteClose();
      }
      return push(chunk, encoding);
    }
    if (w.incoming.window < 0 || channel.readableLength > MAX_INBOUND_BUFFER) {
      on.onOverrun();
      return false;
    }
    return push(chunk, encoding);
  };
}

/** Resolves when `w` can take more (drain), or when it closed. */
export function drained(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (w.destroyed || w.writableEnded) return resolve();
    const done = (): void => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.once('drain', done);
    w.once('close', done);
  });
}

/** Resolves once the connection's socket holds no more than {@link WIRE_HIGH_WATER} bytes (or is gone). */
export async function wireClear(wire: Writable): Promise<void> {
  while (!wire.destroyed && wire.writableLength > WIRE_HIGH_WATER) await drained(wire);
}

/** Caps the channel's send window (see {@link MAX_SEND_WINDOW}); call before writing. */
export function capSendWindow(channel: ServerChannel): void {
  const w = windowsOf(channel);
  if (w.outgoing.window > MAX_SEND_WINDOW) w.outgoing.window = MAX_SEND_WINDOW;
}

/** Whether a write to `dst` over `wire` should wait first. */
function mustWait(dst: Writable, wire: Writable): boolean {
  return dst.writableNeedDrain || wire.writableLength > WIRE_HIGH_WATER;
}

/**
 * Copies `src` into `dst` (a channel or its stderr), pausing `src` while the
 * channel's window or the connection's socket is full; counts each chunk.
 * Never ends `dst`. Returns a function that stops copying.
 */
export function pump(src: Readable, dst: Writable, channel: ServerChannel, wire: Writable, count: (d: Buffer) => void): () => void {
  let stopped = false;
  let waiting = false;
  const wait = async (): Promise<void> => {
    waiting = true;
    src.pause();
    while (!stopped && mustWait(dst, wire)) {
      if (dst.destroyed || wire.destroyed) return;
      if (dst.writableNeedDrain) await drained(dst);
      else await wireClear(wire);
    }
    waiting = false;
    if (!stopped) src.resume();
  };
  const onData = (d: Buffer): void => {
    count(d);
    if (dst.destroyed || dst.writableEnded) return;
    capSendWindow(channel);
    dst.write(d);
    if (!waiting && mustWait(dst, wire)) void wait();
  };
  src.on('data', onData);
  return () => {
    stopped = true;
    src.off('data', onData);
  };
}
