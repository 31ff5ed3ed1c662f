/**
 * What every Aggregate operation shares: its dependencies, the slice ledger,
 * the site's style rules, and the two locks. Every change of the ledger goes
 * through {@link AggregateState.mutate} (one mutex, one batch); work on one
 * slice, node calls included, is serialised by that slice's lock. Calls are
 * numbered as they arrive, so a Delete's tombstone can tell calls that came
 * before it from calls that came after.
 */
import type { RevocationLookup } from '../../core/credentials/index.js';
import { parseUrn } from '../../core/identity/urn.js';
import type { Logger } from '../../core/log.js';
import { KeyedMutex, Mutex } from '../../core/mutex.js';
import type { Sliver, SliverResult } from '../../generated/fedlab/v1/common.js';
import type { Access } from '../access.js';
import type { Clock } from '../../core/clock.js';
import type { StyleName } from '../config.js';
import type { NodeClients } from '../node-clients.js';
import type { NodeRegistry } from '../node-registry.js';
import type { ProviderRegistry } from '../providers.js';
import type { Resources, SliverRecord } from '../records.js';
import { styleRules, type StyleRules } from '../requests.js';
import type { RevocationRelay } from '../revocation-relay.js';
import type { AdmissionInputs } from './admission.js';
import type { Outcome } from './outcome.js';
import type { SliceLedger, SliceLedgerTx } from './slice-ledger.js';
import { sshEndpointToWire } from '../node-ssh.js';
import { sliverToWire } from './to-wire.js';

/** Site settings of the aggregate. */
export interface AggregateSettings {
  readonly style: StyleName;
  readonly holdS: number;
  readonly defaultLifetimeS: number;
  readonly maxLifetimeS: number;
  readonly defaults: Resources;
  readonly maxLinkKbps: number;
  readonly requireRegisteredProviders: boolean;
  /** Whether links stitched to other sites are taken (absent: they are). */
  readonly stitching?: boolean;
  readonly terms: string;
  readonly softwareVersion: string;
}

/** What the aggregate works with, passed in by the role. */
export interface AggregateDeps {
  readonly ledger: SliceLedger;
  readonly registry: NodeRegistry;
  readonly access: Access;
  readonly nodes: NodeClients;
  readonly providers: ProviderRegistry;
  readonly revocations: RevocationLookup;
  /** Slice authorities' signed revocation lists, passed on to the nodes of their slices. */
  readonly relay: RevocationRelay;
  readonly clock: Clock;
  readonly log: Logger;
  readonly maUrn: string;
  readonly maKid: string;
  readonly settings: AggregateSettings;
}

/** The aggregate's shared state and locks. */
export class AggregateState {
  readonly ledger: SliceLedger;
  readonly rules: StyleRules;
  readonly domain: string;
  /** Serialises work on one slice (its node calls included). */
  readonly sliceLocks = new KeyedMutex();
  private readonly mutex = new Mutex();
  private arrivals = 0;

  constructor(readonly deps: AggregateDeps) {
    this.ledger = deps.ledger;
    this.rules = styleRules(deps.settings.style);
    this.domain = parseUrn(deps.maUrn).domain;
  }

  /** The MA's clock, now. */
  get now(): number {
    return this.deps.clock.now();
  }

  /**
   * Numbers a call as it arrives (take it before the first await of the handler): later calls get
   * higher numbers, in this process; tombstones loaded from disk count as older than every one.
   */
  arrive(): number {
    return ++this.arrivals;
  }

  /**
   * Runs a change of the ledger: under the mutex, one batch, then memory. With the call's `signal`
   * the batch is not committed once the call has ended (DEADLINE_EXCEEDED, nothing changed); a store
   * that cannot write refuses it (UNAVAILABLE naming the store). Either way memory is untouched.
   */
  mutate<T>(fn: (tx: SliceLedgerTx, now: number) => T | Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.mutex.run(async () => {
      const tx = this.ledger.tx();
      const result = await fn(tx, this.now);
      await tx.commit(options);
      return result;
    });
  }

  /** What admission reads at `now`: what the ledger has committed, and the owner credentials this site revoked. */
  admissionInputs(now: number): AdmissionInputs {
    return { site: this.ledger, revoked: this.deps.revocations.listFor(this.deps.maKid)?.jtis, now };
  }

  /**
   * The protobuf form of a sliver, with its slice's authority and provider, its node's isolation, and
   * its SSH login (the name its node gave it, at the node's endpoint) when the node serves SSH.
   */
  toWire(s: SliverRecord): Sliver {
    const node = this.deps.registry.get(s.nodeUrn);
    const ssh = s.sshUsername && node?.ssh ? { username: s.sshUsername, endpoint: sshEndpointToWire(node.ssh) } : undefined;
    return sliverToWire(s, this.ledger.slices.get(s.sliceUrn), this.deps.maUrn, node?.record.isolation ?? 0, ssh);
  }

  /** A sliver's result in a per-sliver answer, with its current record when it still has one. */
  resultOf(s: SliverRecord, outcome: Outcome): SliverResult {
    return {
      sliverUrn: s.urn,
      nodeUrn: s.nodeUrn,
      status: outcome.ok ? { code: 0, reason: '' } : { code: outcome.code, reason: outcome.reason },
      sliver: this.toWire(this.ledger.slivers.get(s.urn) ?? s),
    };
  }
}
