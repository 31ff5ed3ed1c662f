// The wire fuzzer (issue 15 item 7): for every method of the descriptor set, request bytes that are
// noise, edits of a valid request, a valid request with random fields merged over it, or a random
// message — sent by the method's right principal or by a caller who should be refused — to the real
// server. Findings: any INTERNAL or UNKNOWN answer, and any refused call after which the server's store
// is not what it was before (compared as dumps, tables the servers' own timers write excepted).
import { status as Status } from '@grpc/grpc-js';
import fc from 'fast-check';
import type { AttackFederation } from './attack-federation.js';
import type { AttackFixtures } from './attack-fixtures.js';
import { callerOf, type CallerClass, type RightPrincipal } from './caller-classes.js';
import type { ApiMethod } from './descriptor-set.js';
import { requestBytes, stringArbitrary } from './message-arbitrary.js';
import { targetOf } from './method-targets.js';
import { codeName, type WireCalls } from './raw-call.js';
import { dumpDifference, dumpStore, type StoreWatch } from './store-watch.js';

/** Codes of a call refused before it did anything: such a call must leave the store as it was. */
const REFUSED: ReadonlySet<Status> = new Set([
  Status.INVALID_ARGUMENT,
  Status.UNAUTHENTICATED,
  Status.PERMISSION_DENIED,
  Status.NOT_FOUND,
  Status.ALREADY_EXISTS,
  Status.FAILED_PRECONDITION,
  Status.RESOURCE_EXHAUSTED,
  Status.OUT_OF_RANGE,
  Status.UNIMPLEMENTED,
]);

/** Callers of a fuzzed call: the right principal half the time (its calls get furthest), else one who should be refused. */
const CALLERS: readonly CallerClass[] = ['right', 'right', 'right', 'noChain', 'peer', 'provider', 'member', 'node', 'otherAdmin'];

/** A method to fuzz: who its right principal is and a valid request of it. */
export interface FuzzSeed {
  readonly method: ApiMethod;
  readonly as: RightPrincipal;
  readonly bytes: Uint8Array;
}

/** Something the fuzzer found, with the input that did it. */
export interface FuzzFinding {
  readonly what: 'internal' | 'store-changed';
  readonly method: string;
  readonly caller: CallerClass;
  readonly kind: string;
  readonly code: string;
  readonly details: string;
  readonly changed?: readonly string[];
  /** The request bytes, hex (the first 64 KiB). */
  readonly input: string;
}

/** What a run did. */
export interface FuzzReport {
  readonly inputs: number;
  readonly byCode: Record<string, number>;
  readonly methods: number;
  /** Refused calls whose store could not be compared (the store was busy with earlier work). */
  readonly unchecked: number;
  readonly findings: FuzzFinding[];
  readonly ms: number;
}

/** Options of {@link runWireFuzz}. */
export interface FuzzOptions {
  readonly fed: AttackFederation;
  readonly fx: AttackFixtures;
  readonly calls: WireCalls;
  readonly watch: StoreWatch;
  readonly seeds: readonly FuzzSeed[];
  /** Strings the fuzzer favours (URNs and names of real objects). */
  readonly known: readonly string[];
  readonly inputs: number;
  /** Stops early once this much time has gone. */
  readonly timeBudgetMs: number;
  /** fast-check seed (the run is reproducible with the same seed and federation). */
  readonly seed: number;
  /** Called every 1000 inputs. */
  readonly progress?: (done: number, report: FuzzReport) => void;
}

const BATCH = 200;
/** How long every store must have been quiet before a refused call's store is compared (ms). */
const QUIET_MS = 100;

/** Runs the fuzzer; never throws for what a server answers (that is what the findings are for). */
export async function runWireFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const strings = stringArbitrary(o.known);
  const cases = fc
    .constantFrom(...o.seeds)
    .chain((seed) =>
      fc
        .record({ caller: fc.constantFrom(...CALLERS), request: requestBytes(seed.method.input, seed.bytes, strings) })
        .map((c) => ({ seed, ...c })),
    );
  const started = Date.now();
  const byCode: Record<string, number> = {};
  const findings: FuzzFinding[] = [];
  let done = 0;
  let unchecked = 0;
  const report = (): FuzzReport => ({ inputs: done, byCode, methods: o.seeds.length, unchecked, findings, ms: Date.now() - started });
  for (let batch = 0; done < o.inputs && Date.now() - started < o.timeBudgetMs; batch++) {
    for (const c of fc.sample(cases, { numRuns: Math.min(BATCH, o.inputs - done), seed: o.seed + batch })) {
      if (Date.now() - started >= o.timeBudgetMs) break;
      const { method, as } = c.seed;
      const target = targetOf(o.fed, method, as, c.caller);
      // Work of earlier calls (a slice authority pushing its revocation list to the site, a deployment
      // going on) may still be writing somewhere: compare only when every store has been quiet a while.
      const quiet = await o.watch.quiet(undefined, QUIET_MS, 1000);
      const before = quiet ? await dumpStore(target.store, o.watch.background) : undefined;
      const deadlineMs = method.serverStreaming ? 1500 : 4000;
      const bytes = Buffer.from(c.request.bytes);
      const end = await o.calls.call(target.address, method, bytes, callerOf(o.fed, o.fx, as, c.caller), deadlineMs);
      const code = codeName(end.code);
      byCode[code] = (byCode[code] ?? 0) + 1;
      done++;
      const finding = {
        method: method.key,
        caller: c.caller,
        kind: c.request.kind,
        code,
        details: end.details.slice(0, 300),
        input: bytes.subarray(0, 65536).toString('hex'),
      };
      if (end.code === Status.INTERNAL || end.code === Status.UNKNOWN) findings.push({ what: 'internal', ...finding });
      if (REFUSED.has(end.code)) {
        if (!before) unchecked++;
        else {
          const changed = dumpDifference(before, await dumpStore(target.store, o.watch.background));
          if (changed.length) findings.push({ what: 'store-changed', ...finding, changed: changed.slice(0, 10), input: finding.input });
        }
      }
      // What an accepted call set going (pushes, retries, deployments) should settle before the next input.
      if (!REFUSED.has(end.code)) await o.watch.quiet(undefined, 3 * QUIET_MS, 3000);
      if (done % 1000 === 0) o.progress?.(done, report());
    }
  }
  return report();
}
