// A service provider (`fedlab serve sp`) whose data directory is on a small tmpfs that fills up: every
// AddMember, Deploy and DeleteDeployment that must write answers UNAVAILABLE naming the store and changes
// nothing (no member, no deployment, a deployment not deleting); reads go on; once space is freed the
// provider writes again by itself; after a kill -9 and a restart every acknowledged member and
// deployment is there and no refused one is. Real slice authority, MA and node managers (process
// driver); root only (it mounts the tmpfs).
import { status as Status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, type DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import type { TestIdentity } from '../helpers/pki.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../helpers/tmpfs.js';

const skip = tmpfsUnavailable();
if (skip) console.warn(`skipping the SP disk-full test: ${skip}`);

const A = 'plc.test';
let fs: Tmpfs | undefined;
let fed: SpFederation | undefined;
let dataDir = '';

const members = new Map<string, 'ok' | 'refused'>();
const deployments = new Map<string, 'ok' | 'refused'>();

/** 'ok', or 'refused' when the store refused the write (UNAVAILABLE naming the store, "nothing was changed"); anything else fails the test. */
async function outcome(call: Promise<unknown>): Promise<'ok' | 'refused'> {
  try {
    await call;
    return 'ok';
  } catch (err) {
    const e = err as { code?: number; details?: string; metadata?: { get(k: string): unknown[] } };
    expect(e.code, String(e.details)).toBe(Status.UNAVAILABLE);
    expect(e.details).toMatch(/the store at .* refuses writes since .*(disk full|I\/O error).*nothing was changed/);
    expect(String(e.metadata?.get('fedlab-store')[0])).toBe(dataDir);
    return 'refused';
  }
}

let identities: TestIdentity[] = [];
let nextIdentity = 0;

/** AddMember of a fresh identity; records whether the store took it. */
async function addMember(): Promise<'ok' | 'refused'> {
  const who = identities[nextIdentity++] as TestIdentity;
  const fate = await outcome(
    (fed as SpFederation)
      .spClient()
      .addMember({ requestId: `add-${who.urn.split(':').pop()}`, memberUrn: who.urn, certificatePem: who.certPem, displayName: '' }),
  );
  members.set(who.urn, fate);
  return fate;
}

/** Deploy of a one-sliver service, to its end (READY) when the store takes it. */
async function deploy(name: string): Promise<'ok' | 'refused'> {
  const run = async (): Promise<void> => {
    let last: DeployResponse | undefined;
    for await (const e of (fed as SpFederation).spClient().deploy({
      requestId: `${name}-1`,
      name,
      spec: {
        sliceUrn: '',
        sliceAuthorityUrn: '',
        sliceName: '',
        mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
        sites: [siteRequest(A, { count: 1 })],
        expiresAt: undefined,
        steps: [{ name: 'serve', argv: ['sleep', '300'], env: {}, timeoutMs: 0, service: true }],
      },
    }))
      last = e;
    expect(last?.deployment?.state, last?.deployment?.error).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
  };
  const fate = await outcome(run());
  deployments.set(name, fate);
  return fate;
}

/** Whether the provider knows a member: a delegation over a slice it does not have says which of the two it lacks (and writes nothing). */
async function isMember(urn: string): Promise<boolean> {
  try {
    await (fed as SpFederation).spClient().delegateToMember({
      requestId: `probe-${Math.random().toString(36).slice(2)}`,
      memberUrn: urn,
      sliceUrn: `urn:fedlab:${A}:slice:no-such-deployment`,
      privileges: [],
      targets: [],
      limits: undefined,
      ttlS: 0,
      maxDelegations: 0,
      sshPublicKey: '',
    });
    throw new Error('a delegation over a slice the provider does not have was granted');
  } catch (err) {
    const e = err as { code?: number; details?: string };
    expect(e.code, e.details).toBe(Status.NOT_FOUND);
    return !/is not a member/.test(String(e.details));
  }
}

async function deploymentStates(): Promise<Map<string, DeploymentState>> {
  const res = await (fed as SpFederation)
    .spClient()
    .listDeployments({ pageSize: 0, pageToken: '', state: DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED });
  return new Map(res.deployments.map((d) => [d.name, d.state]));
}

beforeAll(async () => {
  if (skip) return;
  fs = mountTmpfs(4096);
  dataDir = join(fs.dir, 'sp-data');
  fed = await startSpFederation({ sites: [{ domain: A, nodes: 1 }], child: true, spConfig: { data_dir: dataDir } });
  for (const s of fed.sites)
    await until(() => s.ma?.providers.isRegistered(fed!.home.sp.urn) ?? false, 20_000, `registered at ${s.parties.domain}`);
  identities = await Promise.all(Array.from({ length: 24 }, (_, i) => fed!.home.pki.issue(`urn:fedlab:${A}:user:m${i}`)));
}, 180_000);

afterAll(async () => {
  await fed?.destroy();
  fs?.unmount();
  await disposeParties();
}, 120_000);

describe.skipIf(skip !== undefined)('service provider on a full disk', () => {
  it('refuses what it cannot write, changes nothing, resumes by itself, and a restart finds exactly what it acknowledged', async () => {
    const f = fed as SpFederation;
    for (let i = 0; i < 2; i++) expect(await addMember()).toBe('ok');
    expect(await deploy('before')).toBe('ok');

    (fs as Tmpfs).fill(0);
    await until(async () => (await addMember()) === 'refused', 20_000, 'an AddMember refused by the store');
    for (let i = 0; i < 2; i++) expect(await addMember()).toBe('refused');
    expect(await deploy('refused')).toBe('refused');
    expect(await outcome(f.spClient().deleteDeployment({ name: 'before', keepSlice: false }))).toBe('refused');
    // Nothing of it happened, and reads go on.
    const during = await deploymentStates();
    expect(during.has('refused')).toBe(false);
    expect(during.get('before')).toBe(DeploymentState.DEPLOYMENT_STATE_READY);

    (fs as Tmpfs).free();
    await until(async () => (await addMember()) === 'ok', 30_000, 'an AddMember taken again');
    expect(await deploy('after')).toBe('ok');

    // kill -9 and a restart on the same data.
    await f.kill9Sp();
    await f.startSp();
    const after = await deploymentStates();
    expect(after.get('before')).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
    expect(after.has('after')).toBe(true);
    expect(after.has('refused')).toBe(false);
    for (const [urn, fate] of members) expect(await isMember(urn), `${urn} (${fate})`).toBe(fate === 'ok');
    expect([...members.values()].filter((x) => x === 'refused').length).toBeGreaterThanOrEqual(3);
  }, 180_000);
});
