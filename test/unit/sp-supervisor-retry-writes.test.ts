// The provider's sliver supervisor retrying a step its node refuses (cf10ad4): the refusal is recorded
// once, not rewritten on every attempt, and the record changes again only when the refusal changes (a
// new message, a new code) or the step succeeds. A real LevelDB store whose writes are counted; the node
// manager is a stand-in whose Exec refuses or succeeds as the test says (this is the supervisor's unit
// test; the wire fuzz exercises the same path with a real node).
// Also: the refusal goes with the step's success, and a node that cannot be reached costs no write per
// attempt (its endpoint is looked up again in memory). And a sliver refused as if its credential were not
// trusted (how a node answers for a sliver it no longer holds) is checked with the slice authority, at most
// once a minute, and fails as gone when its slice no longer holds it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status as Status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../services/core/clock.js';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { until } from '../../services/core/timing.js';
import { AllocationState } from '../../services/generated/fedlab/v1/common.js';
import type { DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { DeploymentContext } from '../../services/service-provider/deployments/context.js';
import { SLIVER_CHECK_MS, superviseSliver } from '../../services/service-provider/deployments/supervisor.js';
import { TABLES, type DeploymentRecord, type TargetRecord } from '../../services/service-provider/records.js';
import type { Remotes } from '../../services/service-provider/remotes.js';
import type { SliceCredentials } from '../../services/service-provider/slice-credentials.js';

const NAME = 'web';
const SLIVER = 'urn:fedlab:plc.test:sliver:web-1';
const NODE = 'urn:fedlab:plc.test:node:n1';
/** The supervisor's pause between attempts of a refused step: short, so that a test sees many. */
const RETRY_MS = 5;

/** What the stand-in node answers to the next Exec. */
type Answer = { readonly refuse: Status; readonly details: string } | 'exit 0';
/** What the stand-in slice authority answers to GetSlice: the slice with or without the sliver, no such slice, or no answer. */
type SaAnswer = 'with' | 'without' | 'unallocated' | 'deleted' | 'no slice' | 'unavailable';

/** What grpc-js rejects with when a server refuses a call. */
const refusal = (code: Status, details: string) =>
  Object.assign(new Error(`${code} ${Status[code]}: ${details}`), { code, details, metadata: new Metadata() });

describe('SP supervisor: a retried step keeps its outcome recorded until it changes', () => {
  let dir: string;
  let store: Store;
  let context: DeploymentContext;
  let answer: Answer;
  let saAnswer: SaAnswer;
  let sliceChecks: number;
  let clock: ManualClock;
  let attempts: number;
  /** Writes of the deployments table since the supervisor started (one per atomic LevelDB write). */
  let writes: number;
  const events: DeployResponse[] = [];
  let stopWatch: () => void;
  let abort: AbortController;
  let supervising: Promise<void> | undefined;

  /** The stand-in node manager's Exec: a stream that fails with `answer`'s refusal, or ends with exit code 0. */
  const exec = () => {
    attempts++;
    const now = answer;
    return (async function* () {
      if (now !== 'exit 0') throw refusal(now.refuse, now.details);
      yield { chunk: { $case: 'exit', exit: { status: { $case: 'code', code: 0 }, timedOut: false } } };
    })();
  };

  const target: TargetRecord = {
    sliverUrn: SLIVER,
    nodeUrn: NODE,
    site: 'plc.test',
    endpoint: '127.0.0.1:1',
    stepsDone: 0,
    code: 0,
    reason: '',
    service: 'unspecified',
    restarts: 0,
    lastOutput: [],
    lastExit: '',
  };
  const record = (now: number): DeploymentRecord => ({
    name: NAME,
    requestId: 'r1',
    fingerprint: 'f',
    spec: {
      sliceUrn: 'urn:fedlab:plc.test:slice:web',
      sliceAuthorityUrn: 'urn:fedlab:plc.test:authority:sa',
      sliceName: 'web',
      mode: 0,
      sites: [],
      steps: [{ name: 'setup', argv: ['true'], env: {}, timeoutMs: 0, service: false }],
    },
    state: 'running_steps',
    desired: 'run',
    deleteSlice: false,
    sliceUrn: 'urn:fedlab:plc.test:slice:web',
    createdSlice: false,
    targets: [target],
    createdAt: now,
    updatedAt: now,
    error: '',
  });
  const sliver = (): TargetRecord | undefined => context.records.get(NAME)?.targets.find((t) => t.sliverUrn === SLIVER);
  const retryEvents = () => events.filter((e) => e.message.includes('could not run'));
  /** Lets the supervisor make `n` more attempts, then waits for every write they queued. */
  const attemptsMore = async (n: number) => {
    const want = attempts + n;
    await until(() => attempts >= want, 5_000, `${want} Exec attempts`, 2);
    // Attempt k's outcome is written before the pause that precedes attempt k + 1: all are queued by now.
    await context.records.flushed();
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-sp-retry-'));
    store = await Store.open(dir);
    attempts = 0;
    writes = 0;
    events.length = 0;
    answer = { refuse: Status.FAILED_PRECONDITION, details: 'sliver web-1 is simulated: it runs no commands' };
    saAnswer = 'with';
    sliceChecks = 0;
    clock = new ManualClock();
    context = new DeploymentContext({
      store,
      clock,
      log: silentLogger(),
      remotes: {
        nodeManager: () => ({ exec }),
        site: () => ({ ma: { getNode: () => Promise.resolve({ node: { endpoint: '127.0.0.1:1' } }) } }),
        sliceAuthority: () => ({
          getSlice: ({ sliceUrn }: { sliceUrn: string }) => {
            sliceChecks++;
            if (saAnswer === 'no slice') return Promise.reject(refusal(Status.NOT_FOUND, `no slice ${sliceUrn}`));
            if (saAnswer === 'unavailable') return Promise.reject(refusal(Status.UNAVAILABLE, 'connection refused'));
            const state = saAnswer === 'deleted' ? SliceState.SLICE_STATE_DELETED : SliceState.SLICE_STATE_READY;
            const allocationState =
              saAnswer === 'unallocated' ? AllocationState.ALLOCATION_STATE_UNALLOCATED : AllocationState.ALLOCATION_STATE_PROVISIONED;
            const slivers = saAnswer === 'without' ? [] : [{ urn: SLIVER, allocationState }];
            return Promise.resolve({ slice: { urn: sliceUrn, state, slivers } });
          },
        }),
      } as unknown as Remotes,
      credentials: {
        chainFor: () => Promise.resolve([]),
        forget: () => Promise.resolve(),
        refused: () => Promise.resolve(false),
      } as unknown as SliceCredentials,
      sliceAuthorityUrn: 'urn:fedlab:plc.test:authority:sa',
      sites: [{ domain: 'plc.test', maUrn: 'urn:fedlab:plc.test:authority:ma', endpoint: '127.0.0.1:1' }],
      supervision: { backoffInitialMs: 10, backoffMaxMs: 20, backoffResetMs: 1000, outputLines: 5, execTimeoutMs: 1000, retryMs: RETRY_MS },
      sliceDeadlineMs: 1000,
      maDeadlineMs: 1000,
    });
    await context.records.insert(record(clock.now()));
    stopWatch = store.onWrite((ops) => {
      if (ops.some((op) => op.table === TABLES.deployments && op.key === NAME)) writes++;
    });
    context.events.subscribe(NAME, (e) => events.push(e));
    abort = new AbortController();
    supervising = superviseSliver(context, NAME, SLIVER, abort.signal);
  });

  afterEach(async () => {
    abort.abort();
    await supervising;
    await context.records.flushed();
    stopWatch();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records a node refusing the same step the same way once, then once more for each new refusal and for success', async () => {
    await attemptsMore(6);
    // The step's start (the sliver was never refused before) and its first refusal: nothing per retry.
    expect(writes).toBe(2);
    expect(retryEvents()).toHaveLength(1);
    expect(sliver()).toMatchObject({
      code: Status.FAILED_PRECONDITION,
      reason: 'step setup: sliver web-1 is simulated: it runs no commands',
      service: 'starting',
      stepsDone: 0,
    });

    // The node says something else (same code): recorded once, not per retry.
    answer = { refuse: Status.FAILED_PRECONDITION, details: 'sliver web-1 is being replaced' };
    await attemptsMore(6);
    expect(writes).toBe(3);
    expect(retryEvents()).toHaveLength(2);
    expect(sliver()).toMatchObject({ code: Status.FAILED_PRECONDITION, reason: 'step setup: sliver web-1 is being replaced' });

    // The same words with another code: a change too.
    answer = { refuse: Status.RESOURCE_EXHAUSTED, details: 'sliver web-1 is being replaced' };
    await attemptsMore(6);
    expect(writes).toBe(4);
    expect(retryEvents()).toHaveLength(3);
    expect(sliver()).toMatchObject({ code: Status.RESOURCE_EXHAUSTED, reason: 'step setup: sliver web-1 is being replaced' });

    // The step runs: done (the step, then the sliver's last step, then the deployment READY), and the supervisor ends.
    const before = writes;
    answer = 'exit 0';
    await supervising;
    await context.records.flushed();
    expect(sliver()).toMatchObject({ stepsDone: 1, service: 'exited' });
    expect(context.records.get(NAME)?.state).toBe('ready');
    expect(writes - before).toBe(3);
    expect(retryEvents()).toHaveLength(3);
  });

  // The step's start does not clear a refusal it retries, so its success must: a READY deployment's sliver
  // would otherwise go on showing the last refusal (GetDeployment's status).
  it('leaves no refusal on a sliver whose step succeeded after being refused', async () => {
    await attemptsMore(3);
    answer = 'exit 0';
    await supervising;
    await context.records.flushed();
    expect(context.records.get(NAME)?.state).toBe('ready');
    expect(sliver()).toMatchObject({ stepsDone: 1, service: 'exited', code: Status.OK, reason: '' });
  });

  it('asks the slice authority, at most once a minute, whether a sliver refused as untrusted is still in its slice', async () => {
    answer = { refuse: Status.UNAUTHENTICATED, details: 'credential link 0 fails rule trust-anchor: the root is signed by key k' };
    await attemptsMore(6);
    // Still in the slice: the step is retried, and the slice authority was asked once.
    expect(sliceChecks).toBe(1);
    expect(sliver()).toMatchObject({ code: Status.UNAUTHENTICATED, service: 'starting' });
    clock.advance(SLIVER_CHECK_MS);
    await attemptsMore(3);
    expect(sliceChecks).toBe(2);
    // The slice authority cannot answer: nothing is concluded.
    saAnswer = 'unavailable';
    clock.advance(SLIVER_CHECK_MS);
    await attemptsMore(3);
    expect(sliceChecks).toBe(3);
    expect(sliver()?.service).toBe('starting');
    // The slice no longer holds it: the sliver fails as gone and its supervisor ends.
    saAnswer = 'without';
    clock.advance(SLIVER_CHECK_MS);
    await supervising;
    await context.records.flushed();
    expect(sliceChecks).toBe(4);
    expect(sliver()).toMatchObject({ service: 'failed', code: Status.NOT_FOUND });
    expect(sliver()?.reason).toBe(
      `the sliver is gone: its slice authority says slice urn:fedlab:plc.test:slice:web no longer holds it (its node answered: ${answer.details})`,
    );
  });

  it('fails a sliver refused with PERMISSION_DENIED as gone when its slice is gone at the slice authority', async () => {
    saAnswer = 'no slice';
    answer = { refuse: Status.PERMISSION_DENIED, details: 'the chain does not grant sliver.exec' };
    await supervising;
    await context.records.flushed();
    expect(sliceChecks).toBe(1);
    expect(sliver()).toMatchObject({ service: 'failed', code: Status.NOT_FOUND });
  });

  it.each(['deleted', 'unallocated'] as const)('fails a sliver as gone when the slice authority still lists it but %s', async (how) => {
    saAnswer = how;
    answer = { refuse: Status.UNAUTHENTICATED, details: 'credential link 0 fails rule trust-anchor: the root is signed by key k' };
    await supervising;
    await context.records.flushed();
    expect(sliceChecks).toBe(1);
    expect(sliver()).toMatchObject({ service: 'failed', code: Status.NOT_FOUND });
  });

  it('does not ask the slice authority about other refusals', async () => {
    answer = { refuse: Status.FAILED_PRECONDITION, details: 'sliver web-1 is stopped' };
    await attemptsMore(4);
    expect(sliceChecks).toBe(0);
  });

  // A node that cannot be reached is asked for again at its site on every attempt, in memory: its endpoint
  // is not cleared and written back the same each time.
  it('records a node that cannot be reached once, not on every attempt', async () => {
    answer = { refuse: Status.UNAVAILABLE, details: 'connection refused' };
    await attemptsMore(6);
    expect(retryEvents()).toHaveLength(1);
    expect(sliver()).toMatchObject({ code: Status.UNAVAILABLE, reason: 'step setup: connection refused' });
    expect(writes).toBe(2);
  });
});
