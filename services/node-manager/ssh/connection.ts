/**
 * One SSH connection: public-key authentication against the users of the
 * sliver whose login name the client gave (the sliver READY), then its
 * channels — sessions (at most N per slice on the node), `direct-tcpip` into
 * the sliver's own network namespace — and nothing else: remote forwarding and
 * other global requests are refused. The login is logged when it ends.
 */
import type { AuthContext, Connection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import ssh2 from 'ssh2';
import type { Logger } from '../../core/log.js';
import { parseSshPublicKey } from '../../core/identity/ssh-keys.js';
import type { SliverRecord } from '../records.js';
import type { SliverManager } from '../sliver-manager.js';
import { pipeCommand, type Traffic } from './channel-pipe.js';
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

/** What connections share: settings, the slivers, the per-slice session counts. */
export interface ConnectionDeps {
  readonly settings: SshSettings;
  readonly slivers: SliverManager;
  readonly log: Logger;
  readonly now: () => number;
  /** Open sessions per slice URN. */
  readonly sessions: Map<string, number>;
}

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

  constructor(
    private readonly client: Connection,
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
  }

  /** Ends the connection now (the sliver went away, a key was removed, a limit was reached). */
  end(reason: string): void {
    if (this.closed) return;
    this.endedBy ??= reason;
    this.abort.abort();
    this.client.end();
  }

  /** When the connection started (ms). */
  get startedAt(): number {
    return this.started;
  }

  private authenticate(ctx: AuthContext): void {
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

  private serve(): void {
    const login = this.login as Login;
    const { settings, sessions } = this.d;
    this.client.on('session', (accept, reject) => {
      const open = sessions.get(login.sliceUrn) ?? 0;
      if (open >= settings.maxSessionsPerSlice) {
        this.d.log.info({ slice: login.sliceUrn, open }, 'ssh session refused: the slice has the most sessions allowed on this node');
        return reject();
      }
      sessions.set(login.sliceUrn, open + 1);
      serveSession(accept(), {
        sliverUrn: login.sliverUrn,
        slivers: this.d.slivers,
        traffic: this.traffic,
        log: this.d.log,
        now: this.d.now,
        remainingMs: () => (settings.maxSessionMs ? this.started + settings.maxSessionMs - this.d.now() : Infinity),
        signal: this.abort.signal,
        onEnd: () => {
          const n = (sessions.get(login.sliceUrn) ?? 1) - 1;
          if (n > 0) sessions.set(login.sliceUrn, n);
          else sessions.delete(login.sliceUrn);
        },
      });
    });
    this.client.on('tcpip', (accept, reject, info) => this.forward(accept, reject, info));
    // tcpip-forward (remote forwarding), streamlocal and everything else: refused.
    this.client.on('request', (_accept, reject) => reject?.());
  }

  private forward(accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo): void {
    const login = this.login as Login;
    if (!Number.isInteger(info.destPort) || info.destPort < 1 || info.destPort > 65_535 || !/^[A-Za-z0-9.:-]{1,253}$/.test(info.destIP)) {
      return reject();
    }
    this.d.slivers
      .connect(login.sliverUrn, info.destIP, info.destPort)
      .then(async (relay) => {
        if (this.closed) {
          await relay.kill();
          return;
        }
        const channel = accept();
        const onAbort = (): void => void relay.kill();
        this.abort.signal.addEventListener('abort', onAbort, { once: true });
        try {
          await pipeCommand(channel, relay, this.traffic, this.d.now);
        } finally {
          this.abort.signal.removeEventListener('abort', onAbort);
          channel.end();
        }
      })
      .catch((err: unknown) => {
        this.d.log.info({ sliver: login.sliverUrn, err: (err as Error).message }, 'ssh forwarding refused');
        try {
          reject();
        } catch {
          // Accepted already, or closed.
        }
      });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
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
