// An SSH client that speaks the protocol badly on purpose (ssh2's Client with its protocol object reached
// into): it can stop reading the server, ignore its DISCONNECT, grow windows without limit, send past the
// window it was granted, send a window-change before any pty-req, and close a channel right after its exec.
import { connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import ssh2, { type ClientChannel } from 'ssh2';
import { newSshKeyPair } from '../../services/core/identity/ssh-keys.js';

/** A key pair for the slice users list and the client. */
export function rawKey(): { privateKey: string; publicLine: string } {
  // ssh2 1.17 makes a malformed pair about one time in 128 (a leading zero byte dropped): made again.
  for (;;) {
    const pair = newSshKeyPair();
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error) && !(ssh2.utils.parseKey(pair.public) instanceof Error)) {
      return { privateKey: pair.private, publicLine: pair.public.trim() };
    }
  }
}

/** The parts of ssh2's protocol object the attacks use (not in its types). */
interface Proto {
  channelWindowAdjust(chan: number, amount: number): void;
  channelData(chan: number, data: Buffer): void;
  channelClose(chan: number): void;
  windowChange(chan: number, rows: number, cols: number, height: number, width: number): void;
  exec(chan: number, cmd: string, wantReply: boolean): void;
}

/** A logged-in raw client. */
export interface RawClient {
  readonly client: ssh2.Client;
  /** The TCP socket under it. */
  readonly socket: Socket;
  readonly proto: Proto;
  /** Resolves when the TCP socket closed (ms since the epoch). */
  readonly closed: Promise<number>;
  /** From now on the client sees nothing the server sends (not its DISCONNECT, not its FIN). */
  deafen(): void;
  /** Stops reading the socket (TCP backpressure reaches the server; what it writes queues there). */
  stopReading(): void;
  /**
   * Runs `command` in a session; resolves with the channel (or rejects with the server's refusal).
   * `windowChangeFirst`: a window-change goes before the exec; `closeAfterExec`: CHANNEL_CLOSE right after it.
   */
  exec(command: string, o?: { windowChangeFirst?: boolean; closeAfterExec?: boolean }): Promise<ClientChannel>;
  /** Opens a session and asks nothing in it (no exec, no shell: it just holds a session). */
  bareSession(): void;
  /** The server's id of a channel (what the protocol's channel messages name). */
  remoteId(ch: ClientChannel): number;
  /** Destroys the socket. */
  destroy(): void;
}

/** Connects and logs in as `username` with `privateKey`. */
export function rawLogin(address: string, username: string, privateKey: string): Promise<RawClient> {
  const at = address.lastIndexOf(':');
  // Half-open allowed: the server's FIN does not close this side (a client may go on writing after it).
  const socket = connect({ port: Number(address.slice(at + 1)), host: address.slice(0, at), allowHalfOpen: true });
  socket.on('error', () => undefined);
  const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
  let deaf = false;
  // Between ssh2 and the socket, so that what the server sends can be dropped; writes go straight through.
  const wire = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, done) {
      if (socket.destroyed) return done();
      socket.write(chunk, () => done());
    },
    final(done) {
      done();
    },
  });
  socket.on('data', (d: Buffer) => {
    if (!deaf) wire.push(d);
  });
  const client = new ssh2.Client();
  client.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    client.once('error', reject);
    client.once('ready', () => {
      const raw: RawClient = {
        client,
        socket,
        get proto() {
          return (client as unknown as { _protocol: Proto })._protocol;
        },
        closed,
        deafen: () => {
          deaf = true;
        },
        stopReading: () => socket.pause(),
        exec: (command, o = {}) =>
          new Promise((res, rej) => {
            const p = (client as unknown as { _protocol: Proto })._protocol;
            if (o.windowChangeFirst || o.closeAfterExec) {
              const exec = p.exec.bind(p);
              p.exec = (chan, cmd, wantReply) => {
                p.exec = exec;
                if (o.windowChangeFirst) p.windowChange(chan, 40, 100, 0, 0);
                exec(chan, cmd, wantReply);
                if (o.closeAfterExec) p.channelClose(chan);
              };
            }
            try {
              client.exec(command, (err, ch) => (err ? rej(err) : res(ch)));
            } catch (err) {
              rej(err as Error);
            }
          }),
        bareSession: () => {
          const p = (client as unknown as { _protocol: Proto })._protocol;
          const exec = p.exec.bind(p);
          p.exec = () => {
            p.exec = exec;
          };
          client.exec('never sent', () => undefined);
        },
        remoteId: (ch) => (ch as unknown as { outgoing: { id: number } }).outgoing.id,
        destroy: () => socket.destroy(),
      };
      resolve(raw);
    });
    socket.once('connect', () => client.connect({ sock: wire, username, privateKey, readyTimeout: 20_000 }));
  });
}

/** Resolves with `p`'s outcome, or 'timeout' after `ms`. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
}

/** Whether a process lives (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
