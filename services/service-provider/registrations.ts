/**
 * Registration with the sites' management authorities (docs/design.md §1.3). For
 * each configured site the provider reads the site's terms
 * (Aggregate.GetVersion), checks them against the digest it was told to
 * accept (if any), signs a statement of acceptance with its key (metadata
 * `fedlab-terms-statement`, as the MA expects) and calls
 * RegisterServiceProvider. A failure is retried with a doubling back-off up to
 * a cap; a registered site is registered again every `refresh_ms`, so a site
 * that lost the registration or changed its terms is caught up. Every attempt's
 * outcome is kept in the `registrations` table.
 */
import type { KeyObject } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import { CompactSign } from 'jose';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import { algForKey } from '../core/identity/keys.js';
import type { Clock } from '../core/clock.js';
import { TABLES, type RegistrationRecord } from './records.js';
import type { Remotes, SiteEndpoint } from './remotes.js';
import { plainOutcome } from '../core/rpc/outcome.js';

/** Metadata key of the signed statement (the MA's name for it). */
export const TERMS_STATEMENT_METADATA_KEY = 'fedlab-terms-statement';
/** `typ` of the statement. */
export const TERMS_STATEMENT_TYP = 'fedlab-terms+jwt';

/** A site as configured. */
export interface RegistrationSite extends SiteEndpoint {
  readonly acceptTermsDigest?: string | undefined;
}

/** Options of {@link Registrations}. */
export interface RegistrationsOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly remotes: Remotes;
  readonly providerUrn: string;
  readonly certificatePem: string;
  readonly key: KeyObject;
  readonly kid: string;
  readonly contact: string;
  readonly sites: readonly RegistrationSite[];
  readonly retryMs: number;
  readonly maxRetryMs: number;
  readonly refreshMs: number;
  readonly deadlineMs: number;
}

/** Signs `{"sub", "terms", "iat"}` as a compact JWS with header exactly {alg, typ, kid}. */
export async function signTermsStatement(
  key: KeyObject,
  kid: string,
  providerUrn: string,
  termsDigest: string,
  nowMs: number,
): Promise<string> {
  const payload = Buffer.from(JSON.stringify({ sub: providerUrn, terms: termsDigest, iat: Math.floor(nowMs / 1000) }));
  return new CompactSign(payload).setProtectedHeader({ alg: algForKey(key), typ: TERMS_STATEMENT_TYP, kid }).sign(key);
}

/** The provider's registrations with its sites. */
export class Registrations {
  private readonly table: Table<RegistrationRecord>;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private readonly running = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(private readonly deps: RegistrationsOptions) {
    this.table = deps.store.table<RegistrationRecord>(TABLES.registrations);
  }

  /** Starts registering with every site now (in the background) and keeps the schedule. */
  start(): void {
    this.stopped = false;
    for (const site of this.deps.sites) this.schedule(site, 0);
  }

  private schedule(site: RegistrationSite, delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timers.get(site.domain));
    const t = setTimeout(() => {
      const p = this.attempt(site).finally(() => this.running.delete(p));
      this.running.add(p);
    }, delayMs);
    t.unref();
    this.timers.set(site.domain, t);
  }

  /** One registration attempt with a site; schedules the next. Never throws. */
  async attempt(site: RegistrationSite): Promise<RegistrationRecord> {
    const prev = await this.table.get(site.domain);
    const now = this.deps.clock.now();
    let rec: RegistrationRecord;
    try {
      const digest = await this.register(site);
      rec = {
        domain: site.domain,
        maUrn: site.maUrn,
        state: 'registered',
        termsDigest: digest,
        registeredAt: now,
        lastAttemptAt: now,
        attempts: (prev?.attempts ?? 0) + 1,
      };
      this.failures.delete(site.domain);
      if (prev?.state !== 'registered' || prev.termsDigest !== digest)
        this.deps.log.info({ site: site.domain, ma: site.maUrn, terms: digest }, 'registered with site');
      this.schedule(site, this.deps.refreshMs);
    } catch (err) {
      const { reason } = plainOutcome(err);
      const n = (this.failures.get(site.domain) ?? 0) + 1;
      this.failures.set(site.domain, n);
      const delay = Math.min(this.deps.retryMs * 2 ** Math.min(n - 1, 30), this.deps.maxRetryMs);
      rec = {
        domain: site.domain,
        maUrn: site.maUrn,
        state: prev?.state === 'registered' ? 'registered' : 'failed',
        ...(prev?.termsDigest !== undefined ? { termsDigest: prev.termsDigest } : {}),
        ...(prev?.registeredAt !== undefined ? { registeredAt: prev.registeredAt } : {}),
        lastAttemptAt: now,
        lastError: reason,
        attempts: (prev?.attempts ?? 0) + 1,
      };
      if (n === 1 || n % 10 === 0)
        this.deps.log.warn({ site: site.domain, reason, retryInMs: delay, attempts: n }, 'registration with site failed; retrying');
      this.schedule(site, delay);
    }
    if (!this.stopped) await this.table.put(site.domain, rec, { sync: true });
    return rec;
  }

  private async register(site: RegistrationSite): Promise<string> {
    const { ma, aggregate } = this.deps.remotes.site(site);
    const version = await aggregate.getVersion({}, { deadlineMs: this.deps.deadlineMs });
    const digest = version.termsDigest;
    if (site.acceptTermsDigest !== undefined && site.acceptTermsDigest !== digest) {
      throw new Error(
        `site ${site.domain} shows terms ${digest}, but this provider accepts only ${site.acceptTermsDigest}; read the new terms (Aggregate.GetVersion) and update sites[].accept_terms_digest`,
      );
    }
    const statement = await signTermsStatement(this.deps.key, this.deps.kid, this.deps.providerUrn, digest, this.deps.clock.now());
    const metadata = new Metadata();
    metadata.set(TERMS_STATEMENT_METADATA_KEY, statement);
    await ma.registerServiceProvider(
      {
        // One request id per accepted terms: a retry is idempotent, new terms are a new registration.
        requestId: `sp-register-${digest.slice(7, 39)}`,
        providerUrn: this.deps.providerUrn,
        certificatePem: this.deps.certificatePem,
        contact: this.deps.contact,
        acceptedTermsDigest: digest,
      },
      { deadlineMs: this.deps.deadlineMs, metadata },
    );
    return digest;
  }

  /** Every site's registration as last recorded. */
  async list(): Promise<RegistrationRecord[]> {
    return this.table.values();
  }

  /** Stops the schedule and waits for attempts in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}
