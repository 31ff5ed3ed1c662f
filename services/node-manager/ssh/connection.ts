/**
 * One SSH connection: public-key authentication against the users of the
 * sliver whose login name the client gave (the sliver READY), then its
 * channels — sessions (at most N per slice on the node), `direct-tcpip` into
 * the sliver's own network namespace (forward.ts), at most M per connection —
 * and nothing else: remote forwarding and other global requests are refused.
 * Every channel open and command start re-checks the sliver, the key and the
 * time limits; a connection the node ended serves nothing more and its socket
 * is destroyed. The login is logged when it ends.
 */
import type { Socket } from 'node:net';
import type { AuthContext, Connection } from 'ssh2';
import ssh2 from 'ssh2';
import type { Logger } from '../../core/log.js';
import { parseSshPublicKey } from '../../core/identity/ssh-keys.js';
import type { SliverRecord } from '../records.js';
import type { SliverManager } from '../sliver-manager.js';
import type { Traffic } from './channel-pipe.js';
import { forwardChannel } from './forward.js';
import type { SshLimits } from './limits.js';
import { logLogin } from './login-log.js';
import { serveSession } from './session.js';
import type { SshSettings } from './settings.js';

/** Who logged in. */
export interface Login {
  readonly sliverUrn: string;
  readonly sliceUrn: string;
  readonly login: string;
  readonly userUrn: string;
  /** The key's blob (to see whether it is still the user's) and its fingerprint. */
  readonly keyBlob: Buffer;
  readonly fingerprint: string;
}

/** What connections share: settings, the slivers, the shared counts. */
export interface ConnectionDeps {
  readonly settings: SshSettings;
  readonly slivers: SliverManager;
  readonly log: Logger;
  readonly now: () => number;
  readonly limits: SshLimits;
}

/** How long a connection the node ended may take to read its DISCONNECT before its socket is destroyed (ms). */
export const END_GRACE_MS = 1000;

/** Parsed key lines (records hold lines that were checked on entry; parsing them again on every attempt would cost). */
const parsedKeys = new Map<string, { blob: Buffer; fingerprint: string }>();
const MAX_PARSED_KEYS = 8192;

function parsedKey(line: string): { blob: Buffer; fingerprint: string } {
  let k = parsedKeys.get(line);
  if (!k) {
    const p = parseSshPublicKey(line, 'users');
    k = { blob: p.blob, fingerprint: p.fingerprint };
    if (parsedKeys.size >= MAX_PARSED_KEYS) parsedKeys.clear();
    parsedKeys.set(line, k);
  }
  return k;
}

/** The user and key of a sliver's users that match `blob`, if any. */
export function userOfKey(rec: SliverRecord, blob: Buffer): { urn: string; line: string; fingerprint: string } | undefined {
  for (const u of rec.users ?? []) {
    for (const line of u.sshKeys) {
      const k = parsedKey(line);
      if (k.blob.equals(blob)) return { urn: u.urn, line, fingerprint: k.fingerprint };
    }
  }
  return undefined;
}

/** Why a logged-in connection may not go on, or undefined while it may. */
export function reasonToEnd(rec: SliverRecord | undefined, login: Login, now: number): string | undefined {
  if (!rec) return 'the sliver was deleted';
  if (rec.expiresAt <= now) return 'the sliver expired';
  if (rec.operational !== 'ready') return `the sliver is ${rec.operational}`;
  if (rec.login !== login.login) return 'the sliver has another login name';
  if (!userOfKey(rec, login.keyBlob)) return 'the key is no longer one of the slice users';
  return undefined;
}

/** Serves one connection from its header on. */
export class SshConnection {
  login: Login | undefined;
  readonly traffic: Traffic;
  private readonly started: number;
  private readonly abort = new AbortController();
  private endedBy: string | undefined;
  private closed = false;
  /** The slice whose connection slot this holds. */
  private counted: string | undefined;
  /** Channels open or being opened. */
  private channels = 0;
  private destroyTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Connection,
    private readonly socket: Socket,
    private readonly peer: string,
    private readonly d: ConnectionDeps,
    onAuthenticated: () => void,
    private readonly onClosed: (c: SshConnection) => void,
  ) {
    this.started = d.now();
    this.traffic = { bytesIn: 0, bytesOut: 0, lastActivity: this.started };
    client.on('error', (err) => d.log.debug({ client: peer, err: err.message }, 'ssh connection error'));
    client.on('authentication', (ctx) => this.authenticate(ctx));
    client.on('ready', () => {
      onAuthenticated();
      this.serve();
    });
    client.on('close', () => this.close());
    socket.once('close', () => this.close());
  }

  /**
   * Ends the connection (the sliver went away, a key was removed, a limit was reached): its commands are
   * killed and nothing more is served at once; the client gets a DISCONNECT and, since ssh2 would go on
   * reading a client that ignores it, the socket is destroyed after {@link END_GRACE_MS}.
   */
  end(reason: string): void {
    if (this.closed) return;
    this.endedBy ??= reason;
    this.abort.abort();
    try {
      this.client.end();
    } catch {
      // The socket is gone already.
    }
    this.destroyTimer ??= setTimeout(() => this.socket.destroy(), END_GRACE_MS);
    this.destroyTimer.unref();
  }

  /** Why this connection may not go on at `now`, or undefined while it may (not logged in: undefined). */
  reasonToEnd(now: number): string | undefined {
    const login = this.login;
    if (!login) return undefined;
    const { idleTimeoutMs, maxSessionMs } = this.d.settings;
    return (
      reasonToEnd(this.d.slivers.get(login.sliverUrn), login, now) ??
      (idleTimeoutMs && now - this.traffic.lastActivity >= idleTimeoutMs ? 'idle timeout' : undefined) ??
      (maxSessionMs && now - this.started >= maxSessionMs ? 'session time limit' : undefined)
    );
  }

  /** When the connection started (ms). */
  get startedAt(): number {
    return this.started;
  }

  private authenticate(ctx: AuthContext): void {
    if (this.login || this.abort.signal.aborted) return ctx.reject([]);
    if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
    const rec = this.d.slivers.byLogin(ctx.username);
    const user = rec ? userOfKey(rec, ctx.key.data) : undefined;
    if (!rec || !user || rec.operational !== 'ready' || rec.expiresAt <= this.d.now()) {
      this.d.log.debug({ client: this.peer, login: ctx.username.slice(0, 64), known: Boolean(rec) }, 'ssh login refused');
      return ctx.reject(['publickey']);
    }
    // No signature yet: the client asks whether this key would do (it signs only then).
    if (!ctx.signature) return ctx.accept();
    const key = ssh2.utils.parseKey(user.line);
    const parsed = key instanceof Error ? undefined : Array.isArray(key) ? key[0] : key;
    if (!parsed || !ctx.blob || parsed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
    if (!this.d.limits.take('connections', rec.sliceUrn)) {
      this.d.log.info(
        { slice: rec.sliceUrn, client: this.peer },
        'ssh login refused: the slice or the node has the most connections allowed',
      );
      return ctx.reject([]);
    }
    this.counted = rec.sliceUrn;
    this.login = {
      sliverUrn: rec.urn,
      sliceUrn: rec.sliceUrn,
      login: ctx.username,
      userUrn: user.urn,
      keyBlob: ctx.key.data,
      fingerprint: user.fingerprint,
    };
    ctx.accept();
  }

  /**
   * Whether the connection may go on at a channel open or a command start: not after it was ended, and
   * only while the sliver, the key and the time limits allow (the once-a-second check may not have run yet).
   */
  private mayGoOn(): boolean {
    if (this.abort.signal.aborted || this.closed) return false;
    const now = this.d.now();
    // A channel open or a command start is traffic: the idle limit counts from here.
    this.traffic.lastActivity = now;
    const why = this.reasonToEnd(now);
    if (!why) return true;
    this.d.log.info({ sliver: this.login?.sliverUrn, user: this.login?.userUrn, reason: why }, 'ssh connection ended by the node');
    // Nothing more starts from now; the DISCONNECT goes once the caller's refusal went out.
    this.endedBy ??= why;
    this.abort.abort();
    setImmediate(() => this.end(why));
    return false;
  }

  /** Takes a channel slot of this connection, or says why not (logged). */
  private admitChannel(kind: string): boolean {
    if (!this.mayGoOn()) return false;
    if (this.channels >= this.d.settings.maxChannelsPerConnection) {
      this.d.log.info({ sliver: this.login?.sliverUrn, kind }, 'ssh channel refused: the connection has the most channels allowed');
      return false;
    }
    this.channels++;
    return true;
  }

  /** The peer sent past its window: it is disconnected at once. */
  private overrun(): void {
    this.d.log.warn({ sliver: this.login?.sliverUrn, client: this.peer }, 'ssh peer sent past its window; disconnected');
    this.endedBy ??= 'the client sent past its window';
    this.abort.abort();
    this.socket.destroy();
  }

  private serve(): void {
    const login = this.login as Login;
    const { limits } = this.d;
    this.client.on('session', (accept, reject) => {
      if (!this.admitChannel('session')) return reject();
      if (!limits.take('sessions', login.sliceUrn)) {
        this.channels--;
        this.d.log.info({ slice: login.sliceUrn }, 'ssh session refused: the slice has the most sessions allowed on this node');
        return reject();
      }
      const { maxSessionMs } = this.d.settings;
      serveSession(accept(), {
        sliverUrn: login.sliverUrn,
        slivers: this.d.slivers,
        traffic: this.traffic,
        log: this.d.log,
        now: this.d.now,
        remainingMs: () => (maxSessionMs ? this.started + maxSessionMs - this.d.now() : Infinity),
        signal: this.abort.signal,
        wire: this.socket,
        mayStart: () => this.mayGoOn(),
        onOverrun: () => this.overrun(),
        onEnd: () => {
          limits.release('sessions', login.sliceUrn);
          this.channels--;
        },
      });
    });
    this.client.on('tcpip', (accept, reject, info) =>
      forwardChannel(accept, reject, info, {
        sliverUrn: login.sliverUrn,
        sliceUrn: login.sliceUrn,
        slivers: this.d.slivers,
        limits,
        log: this.d.log,
        traffic: this.traffic,
        now: this.d.now,
        wire: this.socket,
        signal: this.abort.signal,
        admit: () => this.admitChannel('direct-tcpip'),
        mayStart: () => this.mayGoOn(),
        onOverrun: () => this.overrun(),
        onEnd: () => this.channels--,
      }),
    );
    // tcpip-forward (remote forwarding), streamlocal and everything else: refused.
    this.client.on('request', (_accept, reject) => reject?.());
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.destroyTimer);
    this.abort.abort();
    if (this.counted) this.d.limits.release('connections', this.counted);
    this.onClosed(this);
    const l = this.login;
    if (!l) return;
    logLogin(this.d.log, {
      slice: l.sliceUrn,
      sliver: l.sliverUrn,
      login: l.login,
      user: l.userUrn,
      keyFingerprint: l.fingerprint,
      client: this.peer,
      start: new Date(this.started).toISOString(),
      end: new Date(this.d.now()).toISOString(),
      bytesIn: this.traffic.bytesIn,
      bytesOut: this.traffic.bytesOut,
      ...(this.endedBy ? { endedBy: this.endedBy } : {}),
    });
  }
}
