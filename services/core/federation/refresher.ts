/**
 * Refreshes every peer's bundle on a schedule (`federation.refresh_interval_s`)
 * and writes what it decided to the peers directory: an accepted bundle
 * replaces the trusted one; a refused one (it does not chain from the trusted
 * bundle) is logged and noted in the record's `last_refresh`, and the trusted
 * bundle stays until an admin re-pins. Several services of a domain may share
 * the directory and refresh; a record an admin changed meanwhile is not
 * overwritten.
 */
import type { Logger } from '../log.js';
import { refreshPeer, type DialIdentity } from './bundle-client.js';
import { PeerDirectory, type PeerRecord, type RefreshOutcome } from './peers.js';

/** Options of {@link BundleRefresher}. */
export interface BundleRefresherOptions {
  readonly peersDir: string;
  readonly log: Logger;
  readonly identity?: DialIdentity;
  /** Between rounds (ms). */
  readonly intervalMs: number;
  /** Deadline of each GetBundle (ms). */
  readonly deadlineMs: number;
  /** This service's domain (a record of it is skipped). */
  readonly ownDomain?: string;
}

function sameOutcome(a: RefreshOutcome | undefined, b: RefreshOutcome): boolean {
  return a?.result === b.result && a.fingerprint === b.fingerprint;
}

/** Periodic refresh of the peers' bundles. */
export class BundleRefresher {
  private readonly directory: PeerDirectory;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly o: BundleRefresherOptions) {
    this.directory = new PeerDirectory(o.peersDir);
  }

  /** Starts refreshing every `intervalMs`. */
  start(): void {
    if (this.timer || this.o.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.refreshAll().catch((err: unknown) => this.o.log.warn({ err: (err as Error).message }, 'bundle refresh round failed'));
    }, this.o.intervalMs);
    this.timer.unref();
  }

  /** Stops; waits for a round in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One round over every peer (rounds never overlap). */
  refreshAll(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<void> {
    const { records } = await this.directory.list();
    for (const record of records) {
      if (record.domain === this.o.ownDomain) continue;
      await this.refreshOne(record);
    }
  }

  /** Refreshes one peer and writes the outcome; returns it. */
  async refreshOne(record: PeerRecord): Promise<RefreshOutcome> {
    const { outcome, record: accepted } = await refreshPeer(record, {
      deadlineMs: this.o.deadlineMs,
      ...(this.o.identity ? { identity: this.o.identity } : {}),
    });
    const log = this.o.log.child({ peer: record.domain, endpoint: record.endpoint });
    if (outcome.result === 'accepted')
      log.info({ from: record.fingerprint, to: outcome.fingerprint, serial: accepted?.bundle.serial }, 'peer bundle refreshed: accepted');
    else if (outcome.result === 'refused')
      log.warn(
        { trusted: record.fingerprint, served: outcome.fingerprint, why: outcome.detail },
        'peer bundle refresh refused: it does not chain from the trusted bundle; re-pin with `fedlab federation peer add`',
      );
    else if (outcome.result === 'unreachable')
      log.warn({ why: outcome.detail }, 'peer bundle refresh: peer unreachable; keeping the trusted bundle');
    else log.debug('peer bundle unchanged');
    const next = accepted ?? (sameOutcome(record.last_refresh, outcome) ? undefined : { ...record, last_refresh: outcome });
    if (!next) return outcome;
    // Compare and swap: an admin may have re-pinned or removed the peer while we were asking.
    const now = await this.directory.get(record.domain).catch(() => undefined);
    if (
      !now ||
      now.fingerprint !== record.fingerprint ||
      now.pinned_fingerprint !== record.pinned_fingerprint ||
      now.endpoint !== record.endpoint
    ) {
      log.info('peer record changed meanwhile; refresh result not written');
      return outcome;
    }
    await this.directory.put(next);
    return outcome;
  }
}
