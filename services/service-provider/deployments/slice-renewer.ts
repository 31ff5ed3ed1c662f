/**
 * Keeping the slices of live deployments alive. A periodic check finds every
 * live deployment (intent `run`, state RUNNING_STEPS, READY or PARTIAL) whose
 * slice expires within the renewal margin and asks the slice authority to
 * move the slice's expiry to `lifetimeS` from now (RenewSlice, best effort:
 * each site renews what it can, within what it grants). The new expiry and
 * the time of the renewal go into the deployment's record (one synced write);
 * when a site grants less than was asked, or the call fails, the record's
 * renewal note says so (which site, until when) and the log says it once. A
 * renewal that fell short is tried again at the next check; a slice whose
 * expiry has passed is not (the slice authority renews only live slices).
 */
import { status as Status } from '@grpc/grpc-js';
import { parseUrn } from '../../core/identity/urn.js';
import { Periodic } from '../../core/periodic.js';
import { plainOutcome } from '../../core/rpc/outcome.js';
import { AllocationState } from '../../generated/fedlab/v1/common.js';
import type { RenewSliceResponse, Slice } from '../../generated/fedlab/v1/slice_authority.js';
import type { DeploymentRecord, DeploymentStateName } from '../records.js';
import type { DeploymentContext, RenewalSettings } from './context.js';

/** The defaults: renew a day ahead, for a week (the slice authority's default lifetime), checking every 10 s. */
export const DEFAULT_RENEWAL: RenewalSettings = { marginS: 86_400, lifetimeS: 7 * 86_400, checkMs: 10_000 };

/** States of a deployment whose slice is kept alive. */
const LIVE: ReadonlySet<DeploymentStateName> = new Set(['running_steps', 'ready', 'partial']);

/** A site counts as having capped a renewal when it granted more than this short of what was asked. */
const CAP_SLACK_MS = 1_000;

/** Whether a deployment's slice is kept alive. */
export function isRenewable(rec: DeploymentRecord): boolean {
  return rec.desired === 'run' && LIVE.has(rec.state) && rec.sliceUrn !== '';
}

/**
 * How long before its expiry a slice is renewed (ms): the margin, or half the slice's current
 * lifetime (from its last renewal, or the deployment's creation) when that is shorter — so a slice
 * made for minutes is renewed halfway through, not at once and again at every check.
 */
export function renewalMarginMs(rec: DeploymentRecord, expiresAt: number, marginS: number): number {
  const since = rec.sliceRenewedAt ?? rec.createdAt;
  return Math.min(marginS * 1000, Math.max(0, expiresAt - since) / 2);
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** What a RenewSlice answer means for the deployment: the new expiry, the note when it fell short, and a key to log it once by. */
export function renewalOutcome(
  res: RenewSliceResponse,
  asked: number,
  before: number,
): { expiresAt: number; note: string | undefined; key: string } {
  const slice = res.slice;
  const expiresAt = slice?.expiresAt?.getTime() ?? before;
  const failed = res.results.filter((r) => (r.status?.code ?? 0) !== 0);
  const failedSites = new Set(failed.map((r) => r.site));
  const live = slice ? liveSites(slice) : new Set<string>();
  const capped = (slice?.sites ?? []).filter(
    (s) =>
      live.has(s.site) &&
      !failedSites.has(s.site) &&
      (s.status?.code ?? 0) === 0 &&
      s.expiresAt !== undefined &&
      s.expiresAt.getTime() < asked - CAP_SLACK_MS,
  );
  const parts: string[] = [];
  if (capped.length)
    parts.push(
      `${capped.map((s) => `${s.site} capped it to ${iso((s.expiresAt as Date).getTime())}`).join(', ')} (asked until ${iso(asked)})`,
    );
  if (failed.length) {
    const reasons = failed.map((r) => {
      const reason = r.status?.reason ?? '';
      return reason.includes(r.site) ? reason : `${r.site}: ${reason}`;
    });
    parts.push(`not renewed at ${reasons.join('; ')}`);
  }
  if (!parts.length && expiresAt < asked - CAP_SLACK_MS)
    parts.push(`the slice authority capped it to ${iso(expiresAt)} (asked until ${iso(asked)})`);
  if (parts.length && expiresAt <= before) parts.push(`the slice still expires at ${iso(expiresAt)}`);
  const key =
    [...capped.map((s) => `cap:${s.site}`), ...failed.map((r) => `fail:${r.site}:${r.status?.code ?? 0}`)].join(' ') ||
    (parts.length ? 'cap:sa' : '');
  return { expiresAt, note: parts.length ? `renewal: ${parts.join('; ')}` : undefined, key };
}

/** Sites where the slice has a sliver that still holds resources. */
function liveSites(slice: Slice): Set<string> {
  const out = new Set<string>();
  for (const s of slice.slivers) {
    if (
      s.allocationState !== AllocationState.ALLOCATION_STATE_PROVISIONED &&
      s.allocationState !== AllocationState.ALLOCATION_STATE_ALLOCATED
    )
      continue;
    try {
      out.add(parseUrn(s.urn).domain);
    } catch {
      // A sliver URN the site made up: it cannot be placed, so it caps nothing.
    }
  }
  return out;
}

/** The periodic renewal of the slices of live deployments. */
export class SliceRenewer {
  private readonly periodic: Periodic;
  private readonly abort = new AbortController();
  /** What was last logged per slice: a cap or a failure is logged when it starts, not at every check. */
  private readonly logged = new Map<string, string>();

  constructor(
    private readonly context: DeploymentContext,
    private readonly settings: RenewalSettings,
  ) {
    this.periodic = new Periodic({ name: 'slice-renewal', intervalMs: settings.checkMs, log: context.deps.log }, () => this.check());
  }

  /** Starts the checks. */
  start(): void {
    this.periodic.start();
  }

  /** Stops the checks, cancelling a RenewSlice in flight. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.periodic.stop();
  }

  /** One check: each slice of a live deployment is looked at once, however many deployments run on it. */
  async check(): Promise<void> {
    const bySlice = new Map<string, string[]>();
    for (const r of this.context.records.all()) {
      if (!isRenewable(r)) continue;
      bySlice.set(r.sliceUrn, [...(bySlice.get(r.sliceUrn) ?? []), r.name]);
    }
    for (const slice of this.logged.keys()) if (!bySlice.has(slice)) this.logged.delete(slice);
    for (const [sliceUrn, names] of bySlice) {
      if (this.abort.signal.aborted) return;
      await this.renewIfDue(sliceUrn, names);
    }
  }

  /** The deployments of `names` that are still live on the slice (a delete may have begun meanwhile). */
  private liveOf(sliceUrn: string, names: readonly string[]): DeploymentRecord[] {
    return names
      .map((n) => this.context.records.get(n))
      .filter((r): r is DeploymentRecord => !!r && isRenewable(r) && r.sliceUrn === sliceUrn);
  }

  private async renewIfDue(sliceUrn: string, names: readonly string[]): Promise<void> {
    const { remotes, sliceDeadlineMs } = this.context.deps;
    let recs = this.liveOf(sliceUrn, names);
    const first = recs[0];
    if (!first) return;
    const known = recs.map((r) => r.sliceExpiresAt).filter((x): x is number => x !== undefined);
    let expiresAt: number | undefined = known.length ? Math.min(...known) : undefined;
    const due = (at: number): boolean => at - this.context.now() <= renewalMarginMs(first, at, this.settings.marginS);
    if (expiresAt !== undefined && !due(expiresAt)) return;
    // Expired and said so: nothing more to ask the SA.
    if (this.logged.get(sliceUrn) === 'expired' && expiresAt !== undefined && expiresAt <= this.context.now()) return;
    // Due by the record (or not known yet): the slice's expiry as the SA has it now — someone may have
    // renewed it by hand, and a renewal must never shorten it. An SA that does not answer leaves the record's.
    expiresAt = (await this.currentExpiry(sliceUrn, recs)) ?? expiresAt;
    if (expiresAt === undefined || this.abort.signal.aborted) return;
    const now = this.context.now();
    if (expiresAt <= now) {
      await this.note(
        this.liveOf(sliceUrn, names),
        `renewal: the slice expired at ${iso(expiresAt)} before it was renewed`,
        'expired',
        sliceUrn,
      );
      return;
    }
    if (!due(expiresAt)) return;
    const asked = now + this.settings.lifetimeS * 1000;
    if (asked <= expiresAt) return;
    let res: RenewSliceResponse;
    try {
      res = await remotes
        .sliceAuthority()
        .renewSlice({ sliceUrn, expiresAt: new Date(asked), bestEffort: true }, { deadlineMs: sliceDeadlineMs, signal: this.abort.signal });
    } catch (err) {
      if (this.abort.signal.aborted) return;
      const { code, reason } = plainOutcome(err);
      const note = `renewal failed: ${reason}; the slice still expires at ${iso(expiresAt)}; trying again every ${this.settings.checkMs / 1000} s`;
      await this.note(this.liveOf(sliceUrn, names), note, `error:${Status[code] ?? code}`, sliceUrn);
      return;
    }
    const out = renewalOutcome(res, asked, expiresAt);
    const extended = out.expiresAt > expiresAt;
    recs = this.liveOf(sliceUrn, names);
    for (const r of recs) {
      // A renewal that moved nothing and says what the record says already is not written again.
      if (!extended && r.sliceExpiresAt === out.expiresAt && r.renewalNote === out.note) continue;
      await this.context.records.update(
        r.name,
        ({ renewalNote: _old, ...rest }) => ({
          ...rest,
          sliceExpiresAt: out.expiresAt,
          ...(extended ? { sliceRenewedAt: now } : {}),
          ...(out.note ? { renewalNote: out.note } : {}),
        }),
        { message: out.note ?? `slice renewed until ${iso(out.expiresAt)}`, sync: true },
      );
    }
    expiresAt = out.expiresAt;
    const log = this.context.deps.log;
    if (out.note) {
      if (this.logged.get(sliceUrn) !== out.key)
        log.warn({ slice: sliceUrn, expiresAt: iso(expiresAt), note: out.note }, 'slice renewal fell short');
      this.logged.set(sliceUrn, out.key);
    } else {
      log.info({ slice: sliceUrn, expiresAt: iso(expiresAt) }, 'slice renewed');
      this.logged.delete(sliceUrn);
    }
  }

  /** The slice's expiry as the slice authority has it now, recorded where it differs; undefined when the SA does not say. */
  private async currentExpiry(sliceUrn: string, recs: readonly DeploymentRecord[]): Promise<number | undefined> {
    try {
      const slice = (await this.context.deps.remotes.sliceAuthority().getSlice({ sliceUrn }, { signal: this.abort.signal })).slice;
      const at = slice?.expiresAt?.getTime();
      if (at === undefined) return undefined;
      for (const r of recs) {
        if (r.sliceExpiresAt === at) continue;
        await this.context.records.update(r.name, (x) => ({ ...x, sliceExpiresAt: at }), { quiet: true, sync: true });
      }
      return at;
    } catch (err) {
      this.context.deps.log.debug({ slice: sliceUrn, reason: plainOutcome(err).reason }, 'slice expiry not read');
      return undefined;
    }
  }

  /** Records why the renewal fell short on every deployment of the slice (unless they say it already) and logs it once. */
  private async note(recs: readonly DeploymentRecord[], note: string, key: string, sliceUrn: string): Promise<void> {
    for (const r of recs) {
      if (r.renewalNote === note) continue;
      await this.context.records.update(r.name, (x) => ({ ...x, renewalNote: note }), { message: note, sync: true });
    }
    if (this.logged.get(sliceUrn) !== key) this.context.deps.log.warn({ slice: sliceUrn, note }, 'slice not renewed');
    this.logged.set(sliceUrn, key);
  }
}
