/**
 * The node's SSH endpoint (ssh2's server over a listener of our own): the
 * host key, the bound on connections not yet authenticated (one more is
 * closed as soon as it arrives, so a flood costs a socket, never the gRPC
 * service), the handshake timeout, and a watch over the sliver records every
 * second that ends connections whose sliver was deleted, expired or stopped,
 * whose key was removed, that idled or that lasted too long.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { Logger } from '../../core/log.js';
import type { Clock } from '../../core/clock.js';
import type { SshEndpoint } from '../../generated/fedlab/v1/common.js';
import type { SliverManager } from '../sliver-manager.js';
import { SshConnection } from './connection.js';
import type { HostKey } from './host-key.js';
import { SshLimits } from './limits.js';
import type { SshSettings } from './settings.js';

/** How often open connections are checked against the records (ms). */
export const WATCH_INTERVAL_MS = 1000;

/** Options of {@link SshServer}. */
export interface SshServerOptions {
  readonly settings: SshSettings;
  readonly hostKey: HostKey;
  readonly slivers: SliverManager;
  readonly clock: Clock;
  readonly log: Logger;
}

interface Pending {
  authenticated: boolean;
  timer: NodeJS.Timeout;
  readonly socket: Socket;
}

/** The SSH endpoint. */
export class SshServer {
  private readonly ssh: ssh2.Server;
  private readonly listener: NetServer;
  private readonly pending = new Map<string, Pending>();
  private readonly connections = new Set<SshConnection>();
  private readonly sockets = new Set<Socket>();
  private readonly limits: SshLimits;
  private unauthenticated = 0;
  private watch: NodeJS.Timeout | undefined;
  private boundAddress = '';

  constructor(private readonly o: SshServerOptions) {
    const now = (): number => o.clock.now();
    this.limits = new SshLimits(o.settings);
    this.ssh = new ssh2.Server({ hostKeys: [o.hostKey.privateKey], ident: 'fedlab' });
    this.ssh.on('error', (err: Error) => o.log.warn({ err: err.message }, 'ssh server error'));
    this.ssh.on('connection', (client, info) => {
      const peer = `${info.ip}:${info.port}`;
      const state = this.pending.get(peer);
      if (!state) {
        // Every socket comes through accept(): one that did not is not served.
        client.end();
        return;
      }
      const c = new SshConnection(
        client,
        state.socket,
        peer,
        { settings: o.settings, slivers: o.slivers, log: o.log, now, limits: this.limits },
        () => {
          if (!state.authenticated) {
            state.authenticated = true;
            clearTimeout(state.timer);
            this.unauthenticated--;
          }
        },
        (done) => this.connections.delete(done),
      );
      this.connections.add(c);
    });
    this.listener = createServer((socket) => this.accept(socket));
    this.listener.on('error', (err) => o.log.warn({ err: err.message }, 'ssh listener error'));
  }

  private accept(socket: Socket): void {
    const { settings } = this.o;
    if (this.unauthenticated >= settings.maxUnauthenticated) {
      socket.destroy();
      return;
    }
    this.unauthenticated++;
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const state: Pending = {
      socket,
      authenticated: false,
      // Handshake and authentication both within the timeout (OpenSSH's LoginGraceTime).
      timer: setTimeout(() => socket.destroy(), settings.handshakeTimeoutMs),
    };
    this.pending.set(peer, state);
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      clearTimeout(state.timer);
      if (!state.authenticated) this.unauthenticated--;
      state.authenticated = true;
      this.pending.delete(peer);
    });
    socket.on('error', () => undefined);
    this.ssh.injectSocket(socket);
  }

  /** Listens; resolves with the bound host:port. */
  async listen(): Promise<string> {
    const { listenHost, listenPort } = this.o.settings;
    await new Promise<void>((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(listenPort, listenHost, () => {
        this.listener.off('error', reject);
        resolve();
      });
    });
    const a = this.listener.address();
    const port = typeof a === 'object' && a ? a.port : listenPort;
    this.boundAddress = `${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
    this.watch = setInterval(() => this.check(), WATCH_INTERVAL_MS);
    this.watch.unref();
    this.o.log.info({ address: this.boundAddress, hostKey: this.o.hostKey.fingerprint }, 'ssh endpoint listening');
    if (this.o.slivers.driver.kind === 'process' && process.getuid?.() === 0) {
      // As Exec does: the process driver isolates nothing, so a slice user's login is a shell of this process's user.
      this.o.log.warn(
        { address: this.boundAddress },
        'ssh with the process driver as root: every slice user who logs in gets a root shell on this host; use the container driver',
      );
    }
    return this.boundAddress;
  }

  /** What clients are told: address, host key, fingerprint. */
  endpoint(): SshEndpoint {
    return {
      address: this.o.settings.address ?? this.boundAddress,
      hostKey: this.o.hostKey.publicLine,
      hostKeyFingerprint: this.o.hostKey.fingerprint,
    };
  }

  /** Open sessions of a slice (tests and diagnostics). */
  sessionsOf(sliceUrn: string): number {
    return this.limits.count('sessions', sliceUrn);
  }

  /** Open forwards of a slice (tests and diagnostics). */
  forwardsOf(sliceUrn: string): number {
    return this.limits.count('forwards', sliceUrn);
  }

  /** Ends connections that may not go on. */
  check(): void {
    const now = this.o.clock.now();
    for (const c of this.connections) {
      const login = c.login;
      if (!login) continue;
      const why = c.reasonToEnd(now);
      if (why) {
        this.o.log.info({ sliver: login.sliverUrn, user: login.userUrn, reason: why }, 'ssh connection ended by the node');
        c.end(why);
      }
    }
  }

  /** Stops listening and ends every connection. */
  async close(): Promise<void> {
    clearInterval(this.watch);
    for (const c of this.connections) c.end('the node manager stops');
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }
}
