/**
 * One-time login links and the sessions they open. A link carries a random
 * token (32 bytes); only its SHA-256 is kept, it is valid once and for a
 * short time, and it is exchanged for a session whose id (another random
 * 32 bytes, also kept only as a hash) travels in an HttpOnly, Secure,
 * SameSite=Strict cookie. Everything is in memory: a restart ends every
 * session and link (the service writes a new link at start).
 */
import { createHash, randomBytes } from 'node:crypto';

/** Tokens and sessions kept at most (the oldest go first). */
const MAX_TOKENS = 64;
const MAX_SESSIONS = 1024;

/** An open session. */
export interface DashboardSession {
  /** Who opened it, as the dashboard shows it (`one-time link`). */
  readonly label: string;
  readonly expiresAt: number;
}

/** Options of {@link DashboardLogins}. */
export interface DashboardLoginsOptions {
  readonly now: () => number;
  /** How long a token is valid (ms). */
  readonly linkTtlMs: number;
  /** How long a session lasts (ms). */
  readonly sessionTtlMs: number;
}

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** Drops the oldest entries of a map until it has room for one more. */
function makeRoom<V>(map: Map<string, V>, max: number): void {
  while (map.size >= max) map.delete(map.keys().next().value as string);
}

/** The dashboard's one-time tokens and sessions. */
export class DashboardLogins {
  private readonly tokens = new Map<string, number>();
  private readonly sessions = new Map<string, DashboardSession>();

  constructor(private readonly o: DashboardLoginsOptions) {}

  /** How long a token is valid (ms). */
  get linkTtlMs(): number {
    return this.o.linkTtlMs;
  }

  /** A new one-time token (base64url), valid for the link lifetime. */
  mintToken(): string {
    this.sweep();
    const token = randomBytes(32).toString('base64url');
    makeRoom(this.tokens, MAX_TOKENS);
    this.tokens.set(digest(token), this.o.now() + this.o.linkTtlMs);
    return token;
  }

  /**
   * Exchanges a token for a new session, once: the token is gone afterwards. Undefined for a token
   * that is unknown, used or expired.
   */
  redeem(token: string): { readonly id: string; readonly session: DashboardSession } | undefined {
    if (typeof token !== 'string' || token.length === 0 || token.length > 256) return undefined;
    const key = digest(token);
    const expiresAt = this.tokens.get(key);
    this.tokens.delete(key);
    if (expiresAt === undefined || expiresAt <= this.o.now()) return undefined;
    this.sweep();
    const id = randomBytes(32).toString('base64url');
    const session = { label: 'one-time link', expiresAt: this.o.now() + this.o.sessionTtlMs };
    makeRoom(this.sessions, MAX_SESSIONS);
    this.sessions.set(digest(id), session);
    return { id, session };
  }

  /** The session of a cookie's id, while it lasts. */
  session(id: string | undefined): DashboardSession | undefined {
    if (!id || id.length > 256) return undefined;
    const key = digest(id);
    const s = this.sessions.get(key);
    if (!s) return undefined;
    if (s.expiresAt <= this.o.now()) {
      this.sessions.delete(key);
      return undefined;
    }
    return s;
  }

  /** Ends a session (log out). */
  end(id: string | undefined): void {
    if (id && id.length <= 256) this.sessions.delete(digest(id));
  }

  /** Forgets what has expired. */
  private sweep(): void {
    const now = this.o.now();
    for (const [k, at] of this.tokens) if (at <= now) this.tokens.delete(k);
    for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k);
  }
}
