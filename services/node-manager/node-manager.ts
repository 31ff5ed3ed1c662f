/**
 * The node manager's domain: every NodeManager call, validated, authorised
 * and checked against the owner's policy, then carried out by the
 * {@link SliverManager}. Handlers stay thin: they map wire messages in and out.
 */
import { InvalidArgumentError, NotFoundError, PermissionDeniedError } from '../core/errors.js';
import { parseUrn } from '../core/identity/urn.js';
import type { CallContext } from '../core/rpc/context.js';
import { pageSize, urnField } from '../core/validate.js';
import { thumbprintOf, type PublicJwk, type RevocationStore } from '../core/credentials/index.js';
import { takeRevocationLists, type IntakeResult } from './revocation-intake.js';
import { checkSliceUsers, type SliceUserInput } from '../core/identity/ssh-keys.js';
import { NodeHealth, SiteStyle, type Node, type ResourceSpec, type Sliver, type SshEndpoint } from '../generated/fedlab/v1/common.js';
import type { Authorizer, Grant, NmPrivilege } from './access.js';
import type { Clock } from '../core/clock.js';
import { checkCreate, createFingerprint, type CreateSliverInput, type NodeDefaults } from './create-request.js';
import { checkInterfaces } from './network/links.js';
import type { ExecChunk } from './drivers/driver.js';
import { checkArgv, checkEnv, EXEC_LIMITS, teeOutput, type ExecInput } from './exec-request.js';
import { OutputTail } from './output-tail.js';
import type { OwnerPolicy } from './policy.js';
import { isolationOf, toResourceSpec, toSliver, type SliverRecord } from './records.js';
import type { SliverAction, SliverManager } from './sliver-manager.js';
import { decodePageToken, encodePageToken } from '../core/paging.js';

export { MINIMUM, type CreateSliverInput, type NodeDefaults } from './create-request.js';
export { EXEC_LIMITS, type ExecInput } from './exec-request.js';

/** Exec bounds. */
export interface ExecSettings {
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly maxOutputBytes: number;
}

/** What the node says about itself. */
export interface NodeIdentity {
  readonly nodeUrn: string;
  readonly ownerUrn: string;
  readonly aggregateUrn: string;
  readonly style: 'planetlab' | 'emulab' | 'protogeni';
  readonly exclusive: boolean;
  readonly endpoint: string;
  readonly version: string;
  readonly netemAvailable: boolean;
  /** The node's SSH endpoint, when it serves one. */
  readonly ssh?: SshEndpoint;
}

/** A measured usage sample (what heartbeats and GetNodeInfo report). */
export interface UsageSample {
  readonly at: number;
  readonly usage: ResourceSpec;
}

/** Options of {@link NodeManager}. */
export interface NodeManagerOptions {
  readonly identity: NodeIdentity;
  readonly slivers: SliverManager;
  readonly authorizer: Authorizer;
  /** Where slice authorities' revocation lists are kept (the authorizer reads the same store). */
  readonly revocations: Pick<RevocationStore, 'importList' | 'list'>;
  readonly policy: OwnerPolicy;
  readonly defaults: NodeDefaults;
  readonly exec: ExecSettings;
  readonly clock: Clock;
}

/** Most output lines kept per sliver (and returned by one GetSliver). */
export const MAX_OUTPUT_LINES = 200;

const STYLE: Record<NodeIdentity['style'], SiteStyle> = {
  planetlab: SiteStyle.SITE_STYLE_PLANETLAB,
  emulab: SiteStyle.SITE_STYLE_EMULAB,
  protogeni: SiteStyle.SITE_STYLE_PROTOGENI,
};

/** The node manager. */
export class NodeManager {
  private readonly nodeDomain: string;
  private lastSample: { at: number; cpuNs: number } | undefined;
  private usageNow: ResourceSpec = { cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0, bandwidthKbps: 0 };
  readonly startedAt: Date;
  /** The last output lines of each sliver's Exec commands (GetSliver output_lines). */
  readonly output = new OutputTail(MAX_OUTPUT_LINES);

  constructor(private readonly o: NodeManagerOptions) {
    this.nodeDomain = parseUrn(o.identity.nodeUrn).domain;
    this.startedAt = new Date(o.clock.now());
  }

  get slivers(): SliverManager {
    return this.o.slivers;
  }

  get identity(): NodeIdentity {
    return this.o.identity;
  }

  private wire(rec: SliverRecord, unallocated = false): Sliver {
    const id = this.o.identity;
    return toSliver(rec, id.nodeUrn, id.aggregateUrn, this.o.slivers.driver.workDir(rec.name), unallocated, id.ssh);
  }

  /** The node as it sees itself. */
  node(): Node {
    const id = this.o.identity;
    return {
      urn: id.nodeUrn,
      ownerUrn: id.ownerUrn,
      aggregateUrn: id.aggregateUrn,
      style: STYLE[id.style],
      health: NodeHealth.NODE_HEALTH_UP,
      endpoint: id.endpoint,
      capacity: toResourceSpec(this.o.slivers.capacity),
      allocated: toResourceSpec(this.o.slivers.committed),
      usage: { ...this.usageNow },
      sliverCount: this.o.slivers.count,
      isolation: isolationOf(this.o.slivers.driver.kind),
      version: id.version,
      exclusive: id.exclusive,
      netemAvailable: id.netemAvailable,
      missedHeartbeats: 0,
      images: { names: this.images() },
      ...(id.ssh ? { ssh: id.ssh } : {}),
    };
  }

  /** The images slices may use here: those the driver has that the owner's policy allows. */
  images(): string[] {
    return this.o.slivers.driver.images().filter((i) => {
      try {
        this.o.policy.checkImage(i);
        return true;
      } catch {
        return false;
      }
    });
  }

  /** Measures usage now: CPU over the time since the last sample, memory, pids and disk (last quota check). */
  async sampleUsage(): Promise<UsageSample> {
    const m = await this.o.slivers.measure();
    const at = this.o.clock.now();
    let cpuMillis = 0;
    if (this.lastSample && at > this.lastSample.at && m.cpuUsageNs >= this.lastSample.cpuNs) {
      // ns of CPU per ms of wall time / 1000 = cores; x 1000 = millis: the two factors cancel.
      cpuMillis = Math.round((m.cpuUsageNs - this.lastSample.cpuNs) / (at - this.lastSample.at) / 1000);
    }
    this.lastSample = { at, cpuNs: m.cpuUsageNs };
    this.usageNow = {
      cpuMillis,
      memMb: Math.ceil(m.memBytes / 1024 / 1024),
      diskMb: Math.ceil(m.diskBytes / 1024 / 1024),
      pids: m.pids,
      bandwidthKbps: 0,
    };
    return { at, usage: { ...this.usageNow } };
  }

  // ---- calls ---------------------------------------------------------------------------------

  /** GetNodeInfo (node.read, owner-rooted). */
  async getNodeInfo(ctx: CallContext): Promise<{ node: Node; startedAt: Date }> {
    await this.o.authorizer.node(ctx, 'node.read');
    // Heartbeats sample usage on their schedule; without them, sample on demand (at most once a second).
    if (!this.lastSample || this.o.clock.now() - this.lastSample.at > 1000) await this.sampleUsage();
    return { node: this.node(), startedAt: this.startedAt };
  }

  /** CreateSliver (sliver.create, owner-rooted). */
  async createSliver(ctx: CallContext, req: CreateSliverInput): Promise<Sliver> {
    // Numbered before the first await: a delete committed after this arrived supersedes it (sliver-tombstones.ts).
    const call = this.o.slivers.arrive(ctx.signal);
    // Bad input is refused before any credential work and before anything is written.
    const now = this.o.clock.now();
    const checked = checkCreate(req, this.nodeDomain, this.o.defaults, this.o.slivers.driver.kind, now);
    const interfaces = checkInterfaces(req.interfaces, this.o.slivers.driver);
    const { allocation, asked, resources, jwk } = checked;
    // An image this node does not have is INVALID_ARGUMENT naming it, before anything else happens.
    this.o.slivers.driver.checkImage(checked.image);

    const grant = await this.o.authorizer.node(ctx, 'sliver.create');
    this.o.policy.checkParties(req.sliceAuthorityUrn, req.providerUrn);
    this.o.policy.checkImage(checked.image);
    const latest = this.o.policy.latestExpiry(now, grant.limits, grant.expiresAt);
    let expiresAt: number;
    if (asked !== undefined) {
      if (asked > latest.at) {
        throw new PermissionDeniedError(
          `expires_at ${new Date(asked).toISOString()} is too late: ${latest.rule} (latest ${new Date(latest.at).toISOString()})`,
          {
            rule: 'lifetime',
          },
        );
      }
      expiresAt = asked;
    } else {
      expiresAt = Math.min(latest.at, now + (allocation === 'allocated' ? this.o.defaults.holdS : this.o.defaults.lifetimeS) * 1000);
    }

    const fingerprint = createFingerprint(req, checked);

    const rec = await this.o.slivers.create({
      requestId: req.requestId,
      fingerprint,
      caller: ctx.peer.urn,
      urn: req.sliverUrn,
      name: checked.name,
      sliceUrn: req.sliceUrn,
      sliceAuthorityUrn: req.sliceAuthorityUrn,
      sliceAuthorityJwk: jwk,
      ...(checked.incarnation !== undefined ? { sliceIncarnation: checked.incarnation } : {}),
      providerUrn: req.providerUrn,
      clientId: req.clientId,
      resources,
      exclusive: req.exclusive,
      interfaces,
      allocation,
      start: req.start,
      expiresAt,
      sliceLimits: this.o.policy.perSlice(grant.limits),
      image: checked.image,
      users: checked.users,
      call,
    });
    ctx.log.info({ sliver: rec.urn, slice: rec.sliceUrn, state: rec.operational, allocation: rec.allocation }, 'sliver created');
    return this.wire(rec);
  }

  /**
   * The record of a sliver named in a request. For a sliver the node does not have, the caller's chain
   * is checked against the owner first: a caller who could not see the sliver gets the refusal it
   * would get for one that exists, and only an owner-rooted caller learns NOT_FOUND (docs/api.md,
   * Access rules).
   */
  private async recordFor(ctx: CallContext, privilege: NmPrivilege, field: string, urn: string): Promise<SliverRecord> {
    urnField(field, urn, 'sliver');
    const rec = this.o.slivers.get(urn);
    if (rec) return rec;
    await this.o.authorizer.node(ctx, privilege);
    throw new NotFoundError(`no sliver ${urn} on this node; list the node's slivers with ListSlivers`);
  }

  private sliceAuth(ctx: CallContext, privilege: NmPrivilege, rec: SliverRecord): Promise<Grant> {
    return this.o.authorizer.slice(ctx, privilege, {
      sliceUrn: rec.sliceUrn,
      sliceAuthorityUrn: rec.sliceAuthorityUrn,
      sliceAuthorityJwk: rec.sliceAuthorityJwk,
      sliceIncarnation: rec.sliceIncarnation,
    });
  }

  /** GetSliver (sliver.read; owner- or slice-rooted). */
  async getSliver(ctx: CallContext, sliverUrn: string): Promise<Sliver> {
    const rec = await this.recordFor(ctx, 'sliver.read', 'sliver_urn', sliverUrn);
    await this.sliceAuth(ctx, 'sliver.read', rec);
    return this.wire(rec);
  }

  /** GetSliverOutput (sliver.read; owner- or slice-rooted): the last output lines of the sliver's Exec commands. */
  async getSliverOutput(ctx: CallContext, sliverUrn: string, lines: number): Promise<string[]> {
    const rec = await this.recordFor(ctx, 'sliver.read', 'sliver_urn', sliverUrn);
    if (!Number.isSafeInteger(lines) || lines < 0 || lines > MAX_OUTPUT_LINES) {
      throw new InvalidArgumentError(`lines must be between 0 (50) and ${MAX_OUTPUT_LINES}`, { field: 'lines' });
    }
    await this.sliceAuth(ctx, 'sliver.read', rec);
    return this.output.last(rec.urn, lines || 50);
  }

  /** UpdateRevocations (node.read, owner-rooted: the MA relays): see revocation-intake.ts. */
  async updateRevocations(ctx: CallContext, signedLists: readonly string[]): Promise<IntakeResult> {
    const grant = await this.o.authorizer.node(ctx, 'node.read');
    const sliceAuthorityKids = () => new Set(this.o.slivers.list().map((r) => thumbprintOf(r.sliceAuthorityJwk as PublicJwk)));
    const intake = { revocations: this.o.revocations, sliceAuthorityKids, maUrn: this.o.identity.aggregateUrn, clock: this.o.clock };
    return takeRevocationLists(intake, ctx, grant, signedLists);
  }

  /** ListSlivers (sliver.read): every sliver with an owner-rooted chain; one slice's with that slice's chain. */
  async listSlivers(
    ctx: CallContext,
    req: { pageSize: number; pageToken: string; sliceUrn: string },
  ): Promise<{ slivers: Sliver[]; nextPageToken: string }> {
    const size = pageSize(req.pageSize);
    const after = decodePageToken('slivers', req.pageToken);
    let all = this.o.slivers.list();
    if (req.sliceUrn) {
      urnField('slice_urn', req.sliceUrn, 'slice');
      all = all.filter((r) => r.sliceUrn === req.sliceUrn);
      const first = all[0];
      if (first) await this.sliceAuth(ctx, 'sliver.read', first);
      else await this.o.authorizer.node(ctx, 'sliver.read');
    } else {
      await this.o.authorizer.node(ctx, 'sliver.read');
    }
    const rest = after ? all.filter((r) => r.urn > after) : all;
    const page = rest.slice(0, size);
    const last = page[page.length - 1];
    return {
      slivers: page.map((r) => this.wire(r)),
      nextPageToken: rest.length > size && last ? encodePageToken('slivers', last.urn) : '',
    };
  }

  /** RenewSliver (sliver.renew): never past the owner's policy or what the chain allows. */
  async renewSliver(ctx: CallContext, sliverUrn: string, expiresAt: Date | undefined): Promise<Sliver> {
    const rec = await this.recordFor(ctx, 'sliver.renew', 'sliver_urn', sliverUrn);
    const at = expiresAt?.getTime();
    const now = this.o.clock.now();
    if (at === undefined || !Number.isFinite(at)) throw new InvalidArgumentError('expires_at is required', { field: 'expires_at' });
    if (at <= now) throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
    const grant = await this.sliceAuth(ctx, 'sliver.renew', rec);
    const latest = this.o.policy.latestExpiry(rec.createdAt, grant.limits, grant.expiresAt);
    if (at > latest.at) {
      throw new PermissionDeniedError(
        `cannot renew ${sliverUrn} to ${new Date(at).toISOString()}: ${latest.rule} (latest ${new Date(latest.at).toISOString()})`,
        {
          rule: 'lifetime',
        },
      );
    }
    // With the call's signal: a renew past its deadline writes nothing (issue 18, fencing).
    return this.wire(await this.o.slivers.renew(sliverUrn, at, ctx.signal));
  }

  /** ControlSliver (sliver.control; owner- or slice-rooted). */
  async controlSliver(ctx: CallContext, sliverUrn: string, action: SliverAction | undefined): Promise<Sliver> {
    const rec = await this.recordFor(ctx, 'sliver.control', 'sliver_urn', sliverUrn);
    if (!action) throw new InvalidArgumentError('action must be START, STOP or RESTART', { field: 'action' });
    await this.sliceAuth(ctx, 'sliver.control', rec);
    return this.wire(await this.o.slivers.control(sliverUrn, action, ctx.signal));
  }

  /**
   * UpdateSliverUsers (sliver.control, owner-rooted: the MA relays the slice's users): replaces who may
   * log in. Idempotent; open SSH sessions of users no longer listed end within seconds (the SSH endpoint
   * watches the records).
   */
  async updateSliverUsers(ctx: CallContext, sliverUrn: string, users: readonly SliceUserInput[]): Promise<Sliver> {
    urnField('sliver_urn', sliverUrn, 'sliver');
    const checked = checkSliceUsers(users, 'users');
    await this.o.authorizer.ownerOnly(ctx, 'sliver.control', 'UpdateSliverUsers');
    if (!this.o.slivers.get(sliverUrn))
      throw new NotFoundError(`no sliver ${sliverUrn} on this node; list the node's slivers with ListSlivers`);
    const rec = await this.o.slivers.updateUsers(sliverUrn, checked, ctx.signal);
    ctx.log.info({ sliver: sliverUrn, users: checked.map((u) => u.urn) }, 'sliver users updated');
    return this.wire(rec);
  }

  /** DeleteSliver (sliver.delete, owner-rooted). Deleting a sliver that is gone succeeds with existed = false. */
  async deleteSliver(ctx: CallContext, sliverUrn: string): Promise<{ existed: boolean; sliver?: Sliver }> {
    urnField('sliver_urn', sliverUrn, 'sliver');
    await this.o.authorizer.ownerOnly(ctx, 'sliver.delete', 'DeleteSliver');
    const res = await this.o.slivers.delete(sliverUrn, { signal: ctx.signal });
    this.output.forget(sliverUrn);
    if (!res.record) return { existed: false };
    ctx.log.info({ sliver: sliverUrn }, 'sliver deleted');
    return { existed: true, sliver: this.wire(res.record, true) };
  }

  /** Exec (sliver.exec; owner- or slice-rooted): streams output chunks, then the exit. */
  async exec(ctx: CallContext, req: ExecInput): Promise<AsyncIterable<ExecChunk>> {
    const rec = await this.recordFor(ctx, 'sliver.exec', 'sliver_urn', req.sliverUrn);
    const argv = checkArgv(req.argv);
    const env = checkEnv(req.env);
    if (req.stdin && req.stdin.length > EXEC_LIMITS.stdinBytes) {
      throw new InvalidArgumentError(`stdin is ${req.stdin.length} bytes; at most ${EXEC_LIMITS.stdinBytes} are accepted`, {
        field: 'stdin',
      });
    }
    const s = this.o.exec;
    if (!Number.isSafeInteger(req.timeoutMs) || req.timeoutMs < 0 || req.timeoutMs > s.maxTimeoutMs) {
      throw new InvalidArgumentError(`timeout_ms must be between 0 (the default, ${s.defaultTimeoutMs}) and ${s.maxTimeoutMs}`, {
        field: 'timeout_ms',
      });
    }
    await this.sliceAuth(ctx, 'sliver.exec', rec);
    // The call's own deadline bounds the command too.
    const untilDeadline = Number.isFinite(ctx.deadline) ? Math.max(1, ctx.deadline - this.o.clock.now()) : Infinity;
    const timeoutMs = Math.min(req.timeoutMs || s.defaultTimeoutMs, untilDeadline);
    ctx.log.info({ sliver: rec.urn, program: argv[0] }, 'exec');
    const chunks = await this.o.slivers.exec(
      rec.urn,
      { argv, env, ...(req.stdin ? { stdin: req.stdin } : {}), timeoutMs, maxOutputBytes: s.maxOutputBytes },
      ctx.signal,
    );
    return teeOutput(chunks, this.output.writer(rec.urn));
  }
}
