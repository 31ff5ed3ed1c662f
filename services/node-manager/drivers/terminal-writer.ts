/**
 * Writes what is typed into a terminal to its PTY master without ever
 * blocking the event loop.
 *
 * Why not node-pty's own `write`: it goes through a libuv TTY handle, and
 * libuv cannot reopen a PTY master as it does a slave, so it marks the handle
 * "blocking writes" and loops in `write` until every byte is taken. A program
 * in raw mode that does not read leaves the kernel's buffer full and that loop
 * never ends: the whole node manager stops. node-pty opens the master
 * non-blocking, so here each write is one `writeSync` that takes what the
 * kernel has room for (or fails with EAGAIN at once); the rest waits in a
 * queue and is tried again on a timer (libuv offers no second watcher on the
 * same fd to wait for writability). The queue's size is the caller's
 * backpressure signal.
 */
import { constants, readFileSync, writeSync } from 'node:fs';

/** First wait after the kernel refused more, ms; doubled while it goes on refusing. */
const FIRST_RETRY_MS = 2;
/** Longest wait between tries while a program does not read, ms. */
const MAX_RETRY_MS = 64;

/** Options of {@link TerminalWriter}. */
export interface TerminalWriterOptions {
  /**
   * Whether the fd is still the terminal's (node-pty closes it when the terminal closes, and the number
   * may then name another file): asked right before every write, on the event loop like that close.
   */
  readonly isOpen: () => boolean;
  /** Called each time the queue empties after a write left bytes waiting. */
  readonly onDrain?: () => void;
}

/** The master side of a node-pty terminal as {@link TerminalWriter} needs it. */
export interface PtyMaster {
  readonly fd: number;
  /** False once node-pty closed the fd (its socket destroyed, which closes the fd at once). */
  readonly isOpen: () => boolean;
}

/**
 * The master fd of a node-pty terminal and whether it is still open. Neither is in node-pty's types:
 * its UnixTerminal keeps them as `_fd` (also the `fd` getter) and `_socket` (the tty.ReadStream it
 * reads and closes the fd with). Throws if a node-pty upgrade moved them, rather than write blind.
 */
export function ptyMaster(term: object): PtyMaster {
  const t = term as { fd?: unknown; _socket?: { destroyed?: unknown } };
  const socket = t._socket;
  if (typeof t.fd !== 'number' || !socket || typeof socket.destroyed !== 'boolean') {
    throw new Error("node-pty's terminal has no fd or socket where this node manager expects them");
  }
  return { fd: t.fd, isOpen: () => socket.destroyed === false };
}

/** True unless `/proc` shows the fd open without O_NONBLOCK (elsewhere it cannot tell, and trusts node-pty). */
export function isNonBlocking(fd: number): boolean {
  let info: string;
  try {
    info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    return true;
  }
  const flags = /^flags:\s*([0-7]+)$/m.exec(info);
  return !flags || (parseInt(flags[1] as string, 8) & constants.O_NONBLOCK) !== 0;
}

/** A bounded-by-the-caller queue of input for one PTY master fd, written without blocking. */
export class TerminalWriter {
  private readonly queue: Buffer[] = [];
  /** Bytes of the queue's head already written. */
  private offset = 0;
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private delay = FIRST_RETRY_MS;
  /** The kernel refused bytes since the queue was last empty. */
  private waited = false;
  private closed = false;

  /** Throws unless the fd is non-blocking: a blocking one would stall the event loop on the first full buffer. */
  constructor(
    private readonly fd: number,
    private readonly o: TerminalWriterOptions,
  ) {
    if (!isNonBlocking(fd)) throw new Error(`terminal fd ${fd} is blocking; writing to it could stop the node manager`);
  }

  /** Bytes waiting for the program to read (what the caller's backpressure looks at). */
  get queued(): number {
    return this.bytes;
  }

  /** Queues `data` and writes what the kernel takes now; returns the bytes still waiting. */
  write(data: Buffer): number {
    if (this.closed || data.length === 0) return this.bytes;
    this.queue.push(data);
    this.bytes += data.length;
    // A write already waits for the kernel: this one goes behind it, in order.
    if (!this.timer) this.flush();
    return this.bytes;
  }

  /** Drops what waits and writes nothing more (the terminal ended). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.bytes = 0;
  }

  private flush(): void {
    this.timer = undefined;
    while (this.queue.length > 0) {
      if (this.closed || !this.o.isOpen()) return this.close();
      const head = this.queue[0] as Buffer;
      let n: number;
      try {
        n = writeSync(this.fd, head, this.offset, head.length - this.offset);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') {
          this.waited = true;
          this.timer = setTimeout(() => this.flush(), this.delay);
          this.delay = Math.min(MAX_RETRY_MS, this.delay * 2);
          return;
        }
        // EIO and the like: the program's side is gone, its exit follows.
        return this.close();
      }
      this.delay = FIRST_RETRY_MS;
      this.offset += n;
      this.bytes -= n;
      if (this.offset === head.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    if (this.waited) {
      this.waited = false;
      this.o.onDrain?.();
    }
  }
}
