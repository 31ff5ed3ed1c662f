// Issue 15, item 5 (provider and CLI): what crosses from a sliver to an operator, and from an admin to a
// reader. A sliver whose service prints terminal escapes (ESC[2J, ESC]0;title BEL, C1 CSI, DEL, BS, CR)
// reaches `fedlab deployment show` and `fedlab sliver logs` with none of them (caret notation instead,
// exact in --json); a reader calling GetDeployment or ListDeployments sees no step's env and no stdin
// while an admin does; two deploy request ids sharing their first 121 characters make two CreateSlice
// requests, two slices, and deleting one deployment leaves the other's slice.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import {
  DeploymentState,
  type Deployment,
  type DeployRequest,
  type DeployStep,
} from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { sliceRequestId } from '../../services/service-provider/deployments/slice-driver.js';
import { runCli } from '../helpers/cli.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { startSpFederation, type SpFederation } from '../helpers/sp-harness.js';

const A = 'out.test';
// A sleep length no other test uses.
const SLEEP = `600.${process.pid}7`;
// ESC[2J (clear), ESC]0;pwned BEL (window title), C1 CSI (U+009B, as UTF-8), DEL, BS, CR, and a tab.
const NASTY = String.raw`printf 'A\033[2J\033]0;pwned\007B\302\233C\177D\bE\tF\n'; printf 'fake\rline\n'`;
// Anything a terminal acts on, but tab and line feed.
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

let fed: SpFederation;

beforeAll(async () => {
  fed = await startSpFederation({ sites: [{ domain: A, nodes: 1 }] });
  await until(() => fed.sites[0]?.ma?.providers.isRegistered(fed.home.sp.urn) ?? false, 15_000, 'registered');
}, 180_000);
afterAll(async () => {
  await fed?.destroy();
  await disposeParties();
}, 60_000);

function request(requestId: string, name: string, steps: DeployStep[]): DeployRequest {
  return {
    requestId,
    name,
    spec: {
      sliceUrn: '',
      sliceAuthorityUrn: '',
      sliceName: '',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest(A, { count: 1 })],
      expiresAt: undefined,
      steps,
    },
  };
}

async function deployed(req: DeployRequest): Promise<Deployment> {
  let last: Deployment | undefined;
  const seen: string[] = [];
  try {
    for await (const e of fed.spClient().deploy(req, { deadlineMs: 30_000 })) {
      seen.push(`${e.state} ${e.message} ${e.status?.reason ?? ''}`);
      if (e.deployment) last = e.deployment;
    }
  } catch (err) {
    throw new Error(`${String(err)}\n${seen.join('\n')}`);
  }
  expect(last?.state, last?.error).toBe(DeploymentState.DEPLOYMENT_STATE_READY);
  return last as Deployment;
}

describe('what slivers and admins put in a deployment', { timeout: 120_000 }, () => {
  let dep: Deployment;
  const adminFlags = () => [
    '--sp',
    fed.spAddress(),
    '--sp-urn',
    fed.home.sp.urn,
    '--cert',
    fed.spAdmin.certPath,
    '--key',
    fed.spAdmin.keyPath,
    '--ca',
    fed.caFile,
  ];

  beforeAll(async () => {
    dep = await deployed(
      request('nasty-1', 'nasty', [
        {
          name: 'secret',
          argv: ['sh', '-c', 'cat >/dev/null; echo setup'],
          env: { API_TOKEN: 'hunter2' },
          stdin: Buffer.from('s3cret'),
          timeoutMs: 0,
          service: false,
        },
        {
          name: 'serve',
          argv: ['sh', '-c', `${NASTY}; exec sleep ${SLEEP}`],
          env: { DB_PASSWORD: 'swordfish' },
          timeoutMs: 0,
          service: true,
        },
      ]),
    );
    await until(
      async () =>
        ((await fed.spClient().getDeployment({ name: 'nasty' })).deployment?.targets[0]?.lastOutput ?? []).some((l) => l.includes('pwned')),
      15_000,
      'the service printed',
    );
  }, 90_000);

  it('a reader sees no env and no stdin of any step; an admin sees both', async () => {
    const asAdmin = (await fed.spClient().getDeployment({ name: 'nasty' })).deployment as Deployment;
    expect(asAdmin.spec?.steps[0]?.env).toEqual({ API_TOKEN: 'hunter2' });
    expect(Buffer.from(asAdmin.spec?.steps[0]?.stdin ?? []).toString()).toBe('s3cret');
    expect(asAdmin.spec?.steps[1]?.env).toEqual({ DB_PASSWORD: 'swordfish' });

    // The member is a reader (readers: urn:fedlab:<home>:user:*).
    const asReader = (await fed.spClient(fed.member).getDeployment({ name: 'nasty' })).deployment as Deployment;
    const listed = (await fed.spClient(fed.member).listDeployments({ pageSize: 0, pageToken: '', state: 0 })).deployments;
    for (const d of [asReader, listed.find((x) => x.name === 'nasty') as Deployment]) {
      expect(d.spec?.steps.map((s) => s.name)).toEqual(['secret', 'serve']);
      expect(d.spec?.steps.map((s) => s.env)).toEqual([{}, {}]);
      expect(d.spec?.steps.map((s) => s.stdin)).toEqual([undefined, undefined]);
      expect(JSON.stringify(d)).not.toMatch(/hunter2|swordfish|s3cret|czNjcmV0/);
      // The rest is the admin's view.
      expect(d.targets.map((t) => t.sliverUrn)).toEqual(asAdmin.targets.map((t) => t.sliverUrn));
      expect(d.spec?.steps.map((s) => s.argv)).toEqual(asAdmin.spec?.steps.map((s) => s.argv));
    }
  });

  it('fedlab deployment show prints no control character from the sliver; --json keeps the text exact', async () => {
    const show = await runCli(['deployment', 'show', 'nasty', ...adminFlags()], { timeoutMs: 30_000 });
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).not.toMatch(CONTROLS);
    expect(show.stdout).toContain('A^[[2J^[]0;pwned^GBM-^[C^?D^HE\tF');
    expect(show.stdout).toContain('fake^Mline');
    // The table's LAST OUTPUT cell: no tab either.
    expect(show.stdout.split('\n').find((l) => l.startsWith(A))).not.toMatch(/\t/);

    const json = await runCli(['deployment', 'show', 'nasty', ...adminFlags(), '--json'], { timeoutMs: 30_000 });
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout).not.toMatch(CONTROLS);
    const lines = (JSON.parse(json.stdout) as { targets: { last_output: string[] }[] }).targets[0]?.last_output;
    expect(lines).toContain('A\x1b[2J\x1b]0;pwned\x07B\u009bC\x7fD\bE\tF');
  });

  it('fedlab sliver logs prints no control character from the sliver', async () => {
    const sp = fed.spClient();
    await sp.addMember({ requestId: 'bob-1', memberUrn: fed.member.urn, certificatePem: fed.member.certPem, displayName: 'Bob' });
    const { chain } = await sp.delegateToMember({
      sshPublicKey: '',
      requestId: 'bob-nasty',
      memberUrn: fed.member.urn,
      sliceUrn: dep.sliceUrn,
      privileges: [],
      targets: [],
      limits: undefined,
      ttlS: 3600,
      maxDelegations: 0,
    });
    const chainFile = join(fed.dir, 'bob-nasty.chain');
    writeFileSync(chainFile, `${chain.join('\n')}\n`, { mode: 0o600 });
    const target = dep.targets[0] as Deployment['targets'][number];
    const args = ['sliver', 'logs', '--node', target.nodeEndpoint, '--sliver', target.sliverUrn, '--chain', chainFile];
    const tls = ['--cert', fed.member.certPath, '--key', fed.member.keyPath, '--ca', fed.caFile];
    const logs = await runCli([...args, ...tls], { timeoutMs: 30_000 });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).not.toMatch(CONTROLS);
    expect(logs.stdout).toContain('A^[[2J^[]0;pwned^GBM-^[C^?D^HE\tF');
    expect(logs.stdout).toContain('fake^Mline');
    const json = await runCli([...args, ...tls, '--json'], { timeoutMs: 30_000 });
    expect(json.stdout).not.toMatch(CONTROLS);
    expect((JSON.parse(json.stdout) as { lines: string[] }).lines).toContain('A\x1b[2J\x1b]0;pwned\x07B\u009bC\x7fD\bE\tF');
  });

  it('two deploy request ids sharing their first 121 characters make two slices; deleting one keeps the other', async () => {
    const shared = 'r'.repeat(121);
    const [one, two] = [`${shared}-first1`, `${shared}-second`];
    expect(one).toHaveLength(128);
    expect(sliceRequestId(one)).not.toBe(sliceRequestId(two));
    const quick = [{ name: 'run', argv: ['true'], env: {}, timeoutMs: 0, service: false }];
    const a = await deployed(request(one, 'long-a', quick));
    const b = await deployed(request(two, 'long-b', quick));
    expect(a.sliceUrn).not.toBe(b.sliceUrn);
    const slices = (await fed.saClient().listSlices({ pageSize: 1000, pageToken: '', state: SliceState.SLICE_STATE_UNSPECIFIED })).slices;
    const byRequest = new Map(slices.map((s) => [s.requestId, s.urn]));
    expect(byRequest.get(sliceRequestId(one))).toBe(a.sliceUrn);
    expect(byRequest.get(sliceRequestId(two))).toBe(b.sliceUrn);

    await fed.spClient().deleteDeployment({ name: 'long-a', keepSlice: false });
    await until(
      async () => (await fed.saClient().getSlice({ sliceUrn: a.sliceUrn })).slice?.state === SliceState.SLICE_STATE_DELETED,
      20_000,
      'long-a slice deleted',
    ).catch(async () => {
      // A deleted slice may also be gone from the slice authority altogether.
      await fed
        .saClient()
        .getSlice({ sliceUrn: a.sliceUrn })
        .then(
          () => Promise.reject(new Error('long-a slice still there')),
          () => undefined,
        );
    });
    expect((await fed.saClient().getSlice({ sliceUrn: b.sliceUrn })).slice?.state).toBe(SliceState.SLICE_STATE_READY);
  });
});
