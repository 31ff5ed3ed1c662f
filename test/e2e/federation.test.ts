// End to end: a three-site federation (planetlab, emulab and protogeni style sites, each its own domain
// and CA) run as separate `fedlab serve` processes by the same library as `fedlab up`: peered by pinned
// bundle fingerprints, every MA delegating to the home domain's slice authority, a service provider.
// One federation serves every case; the cases that kill a process restart it. Then `fedlab up --once`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCertificate } from '../../certs/index.js';
import { homeUrns, tlsOfDir } from '../../cli/up/pki.js';
import { createClient, isServiceError, type PromiseClient } from '../../services/core/rpc/client.js';
import { OperationalState, SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { NodeManagerService, SliverAction } from '../../services/generated/fedlab/v1/node_manager.js';
import { ServiceState } from '../../services/generated/fedlab/v1/service_provider.js';
import {
  SliceAuthorityService,
  SliceState,
  type CreateSliceRequest,
  type Slice,
} from '../../services/generated/fedlab/v1/slice_authority.js';
import type { NodeRuntime, SiteRuntime } from '../../cli/up/federation.js';
import { runCli } from '../helpers/cli.js';
import { openFederation, type TestFederation } from '../helpers/federation.js';

const NODES = 2;
let tf: TestFederation;

/** Every CA of the federation, so a client of one domain can verify servers of all of them. */
function allCas(): string {
  return tf.fed.sites.map((s) => readFileSync(`${s.paths.ca}/ca.pem`, 'utf8')).join('');
}

/** A node manager client as the node's MA, holding the owner → MA chain: sees what really runs on the node. */
function asMa(site: SiteRuntime, node: NodeRuntime): { client: PromiseClient<typeof NodeManagerService>; chain: string[] } {
  const client = createClient(NodeManagerService, {
    address: node.endpoint,
    tls: tlsOfDir(site.paths.ma),
    serverUrn: node.urn,
    deadlineMs: 5000,
  });
  const chain = readFileSync(node.paths.ownerChain, 'utf8').split('\n').filter(Boolean);
  return { client, chain };
}

/** The slivers of a slice on every node of every site: `site/node → sliver URNs`. */
async function sliversOnNodes(sliceUrn: string): Promise<string[]> {
  const out: string[] = [];
  for (const site of tf.fed.sites) {
    for (const node of site.nodes) {
      const { client, chain } = asMa(site, node);
      try {
        const res = await client.listSlivers({ pageSize: 1000, pageToken: '', sliceUrn }, { chain });
        for (const s of res.slivers) out.push(`${site.domain}/${node.name}/${s.urn}`);
      } finally {
        client.close();
      }
    }
  }
  return out;
}

function sliceRequest(
  name: string,
  o: { domains?: string[]; mode?: SliceMode; expiresAt?: Date; wait?: boolean } = {},
): CreateSliceRequest {
  const sites = tf.fed.sites.filter((s) => !o.domains || o.domains.includes(s.domain));
  return {
    users: [],
    requestId: `req-${name}`,
    name,
    description: 'e2e',
    mode: o.mode ?? SliceMode.SLICE_MODE_ALL_OR_NOTHING,
    sites: sites.map((s) => ({
      site: s.domain,
      request: {
        nodes: { nodeUrns: [], count: 1, clientIds: [] },
        resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
        links: [],
        exclusive: s.style === 'emulab',
        requestDocument: '',
        requestDocumentFormat: '',
      },
    })),
    start: true,
    wait: o.wait ?? true,
    ...(o.expiresAt ? { expiresAt: o.expiresAt } : {}),
  };
}

function sa(): PromiseClient<typeof SliceAuthorityService> {
  return tf.fed.saClient(tf.fed.homePaths.sp, 30_000);
}

async function until<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function getSlice(urn: string): Promise<Slice | undefined> {
  try {
    return (await sa().getSlice({ sliceUrn: urn })).slice;
  } catch (err) {
    if (isServiceError(err) && err.code === Code.NOT_FOUND) return undefined;
    throw err;
  }
}

async function deleteSlice(urn: string): Promise<void> {
  await until(
    async () => {
      const res = await sa().deleteSlice({ sliceUrn: urn });
      return res.slice?.state === SliceState.SLICE_STATE_DELETED ? true : undefined;
    },
    20_000,
    `slice ${urn} deleted`,
  );
}

// Generous budgets: the machine has two cores and other suites may run beside this one.
describe('a three-site federation as separate processes', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    const t0 = Date.now();
    tf = await openFederation({ nodes: NODES, heartbeatMs: 500, logLevel: 'info' });
    await tf.fed.startSites();
    await tf.fed.peerDomains();
    await tf.fed.delegateToSliceAuthority();
    await tf.fed.startSliceAuthority();
    await tf.fed.startServiceProvider();
    console.log(
      `federation of ${tf.fed.sites.length} sites x ${NODES} nodes + SA + SP up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${tf.fed.driver.kind} driver)`,
    );
  }, 240_000);

  afterAll(async () => {
    if (!tf) return;
    const { killed, swept } = await tf.destroy();
    // A clean stop needs no SIGKILL; what the sweep found are runtimes of slivers whose slices the tests left.
    expect(killed).toEqual([]);
    expect(swept).toEqual([]);
  }, 60_000);

  it('creates a slice across all three sites, every sliver READY on its node', async () => {
    const res = await sa().createSlice(sliceRequest('across'));
    const slice = res.slice as Slice;
    expect(SliceState[slice.state]).toBe('SLICE_STATE_READY');
    expect(new Set(slice.slivers.map((s) => s.aggregateUrn))).toEqual(new Set(tf.fed.sites.map((s) => s.maUrn)));
    for (const s of slice.slivers) expect(OperationalState[s.operationalState]).toBe('OPERATIONAL_STATE_READY');
    const onNodes = await sliversOnNodes(slice.urn);
    expect(onNodes).toHaveLength(3);
    expect(onNodes.map((x) => x.split('/')[0]).sort()).toEqual(tf.fed.sites.map((s) => s.domain).sort());
    await deleteSlice(slice.urn);
    expect(await sliversOnNodes(slice.urn)).toEqual([]);
  });

  it('the provider deploys a service on every site; a member execs in each sliver with a delegated chain and is refused a delete', async () => {
    const dep = await tf.fed.deploy('svc', ['sh', '-c', 'while true; do echo "tick $(hostname)"; sleep 1; done'], { perSite: 1 });
    expect(dep?.sliceUrn).toMatch(/^urn:fedlab:plc\.test:slice:/);
    const sliceUrn = dep?.sliceUrn as string;
    // The service runs in every sliver, on all three sites, and its output reaches the provider.
    const running = await until(
      async () => {
        const d = await tf.fed.getDeployment('svc');
        return d &&
          d.targets.length === 3 &&
          d.targets.every((t) => t.serviceState === ServiceState.SERVICE_STATE_RUNNING && t.lastOutput.some((l) => l.includes('tick')))
          ? d
          : undefined;
      },
      30_000,
      'the service running with output in 3 slivers',
    );
    expect(new Set(running.targets.map((t) => t.site))).toEqual(new Set(tf.fed.sites.map((s) => s.domain)));

    const sp = tf.fed.spClient();
    const memberDir = tf.fed.homePaths.member;
    await sp.addMember({
      requestId: 'm-1',
      memberUrn: homeUrns(tf.fed.home).member,
      certificatePem: readFileSync(`${memberDir}/cert.pem`, 'utf8'),
      displayName: 'member',
    });
    const { chain } = await sp.delegateToMember({
      sshPublicKey: '',
      requestId: 'd-1',
      memberUrn: homeUrns(tf.fed.home).member,
      sliceUrn,
      privileges: ['sliver.exec', 'sliver.read'],
      targets: [],
      ttlS: 600,
      maxDelegations: 0,
    });
    // SA → SP → member: the member holds the leaf.
    expect(chain).toHaveLength(2);
    const memberTls = tlsOfDir(memberDir, allCas());
    for (const t of running.targets) {
      const nm = createClient(NodeManagerService, { address: t.nodeEndpoint, tls: memberTls, serverUrn: t.nodeUrn, deadlineMs: 10_000 });
      try {
        let stdout = '';
        let exit: number | undefined;
        for await (const c of nm.exec(
          { sliverUrn: t.sliverUrn, argv: ['sh', '-c', 'echo member-was-here'], env: {}, timeoutMs: 5000 },
          { chain },
        )) {
          if (c.chunk?.$case === 'stdout') stdout += c.chunk.stdout.toString();
          if (c.chunk?.$case === 'exit' && c.chunk.exit.status?.$case === 'code') exit = c.chunk.exit.status.code;
        }
        expect(stdout.trim(), `exec on ${t.site}`).toBe('member-was-here');
        expect(exit).toBe(0);
        // Beyond its privileges (exec and read only): stopping the sliver is refused with PERMISSION_DENIED,
        // deleting it too (node managers take deletes only on owner-rooted chains: a slice chain is PERMISSION_DENIED there).
        const stop = await nm.controlSliver({ sliverUrn: t.sliverUrn, action: SliverAction.SLIVER_ACTION_STOP }, { chain }).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(isServiceError(stop) && stop.code, `stop on ${t.site}`).toBe(Code.PERMISSION_DENIED);
        const del = await nm.deleteSliver({ sliverUrn: t.sliverUrn }, { chain }).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(isServiceError(del) && del.code, `delete on ${t.site}: ${String(del)}`).toBe(Code.PERMISSION_DENIED);
      } finally {
        nm.close();
      }
    }
    // Nothing was deleted: still three slivers.
    expect(await sliversOnNodes(sliceUrn)).toHaveLength(3);
    expect(await tf.fed.deleteDeployment('svc')).toBe(true);
    await until(async () => ((await sliversOnNodes(sliceUrn)).length === 0 ? true : undefined), 15_000, 'the deployment slivers gone');
  });

  it('refuses a provider of an unpeered domain, and a provider without an account', async () => {
    const rogueDir = mkdtempSync(join(tmpdir(), 'fedlab-rogue-'));
    try {
      const { initCa } = await import('../../certs/index.js');
      await initCa({ domain: 'rogue.test', outDir: join(rogueDir, 'ca') });
      await issueCertificate({ caDir: join(rogueDir, 'ca'), urn: 'urn:fedlab:rogue.test:sp:evil', outDir: join(rogueDir, 'evil') });
      const rogue = createClient(SliceAuthorityService, {
        address: tf.fed.saAddress,
        tls: tlsOfDir(join(rogueDir, 'evil'), allCas()),
        serverUrn: homeUrns(tf.fed.home).sa,
        deadlineMs: 5000,
      });
      const err = await rogue.createSlice(sliceRequest('rogue')).then(
        () => undefined,
        (e: unknown) => e,
      );
      rogue.close();
      // Its certificate chains to no CA the SA trusts: the TLS handshake fails.
      expect(isServiceError(err) && [Code.UNAVAILABLE, Code.UNAUTHENTICATED].includes(err.code)).toBe(true);

      const homeCa = join(tf.dir, tf.fed.home, 'ca');
      await issueCertificate({ caDir: homeCa, urn: `urn:fedlab:${tf.fed.home}:sp:stranger`, outDir: join(rogueDir, 'stranger') });
      const stranger = createClient(SliceAuthorityService, {
        address: tf.fed.saAddress,
        tls: tlsOfDir(join(rogueDir, 'stranger')),
        serverUrn: homeUrns(tf.fed.home).sa,
        deadlineMs: 5000,
      });
      const err2 = await stranger.createSlice(sliceRequest('stranger')).then(
        () => undefined,
        (e: unknown) => e,
      );
      stranger.close();
      expect(isServiceError(err2) && err2.code).toBe(Code.PERMISSION_DENIED);
      expect(await sliversOnNodes(`urn:fedlab:${tf.fed.home}:slice:rogue`)).toEqual([]);
      expect(await sliversOnNodes(`urn:fedlab:${tf.fed.home}:slice:stranger`)).toEqual([]);
    } finally {
      rmSync(rogueDir, { recursive: true, force: true });
    }
  });

  it('all or nothing with one site down (kill -9 of its MA) rolls the others back within the deadline', async () => {
    const down = tf.fed.sites[tf.fed.sites.length - 1] as SiteRuntime;
    await down.ma.kill9();
    try {
      const t0 = Date.now();
      const res = await sa()
        .createSlice(sliceRequest('downsite'))
        .then(
          (r) => r.slice,
          (e: unknown) => e,
        );
      const took = Date.now() - t0;
      // The SA's site deadline is 6 s; the answer comes within it plus the rollback.
      expect(took).toBeLessThan(12_000);
      const slice = isServiceError(res) ? await getSlice(`urn:fedlab:${tf.fed.home}:slice:downsite`) : (res as Slice);
      if (slice) {
        expect(SliceState[slice.state]).toBe('SLICE_STATE_FAILED');
        const site = slice.sites.find((s) => s.site === down.domain);
        expect(site?.status?.code).not.toBe(0);
        expect(site?.status?.reason).toMatch(new RegExp(down.domain.replace('.', '\\.') + '|unavailable|deadline|reach', 'i'));
      } else {
        expect(isServiceError(res) && (res.details || res.message)).toMatch(new RegExp(down.domain.replace('.', '\\.')));
      }
      expect(await sliversOnNodes(`urn:fedlab:${tf.fed.home}:slice:downsite`)).toEqual([]);
    } finally {
      await down.ma.start();
      await tf.fed.waitNodesUp(30_000);
    }
  });

  it('kill -9 of the SA mid-CreateSlice, then restart, leaves no orphan sliver', async () => {
    const saProc = tf.fed.sa as NonNullable<typeof tf.fed.sa>;
    // Kill the SA once the request is recorded (its intent written) and the sites are being called:
    // after a short delay, or as soon as a first sliver exists on a node. If the slice settled before
    // the kill could land (a loaded machine), delete it and try again with a shorter delay.
    let urn = '';
    let killedMidway = false;
    for (const delayMs of [150, 50, 0]) {
      urn = `urn:fedlab:${tf.fed.home}:slice:crash-${delayMs}`;
      let settled = false;
      const requested = saProc.nextLine('slice requested', 20_000);
      void saProc.nextLine('slice settled', 20_000).then(
        () => (settled = true),
        () => undefined,
      );
      const creating = sa()
        .createSlice(sliceRequest(`crash-${delayMs}`))
        .then(
          () => 'answered',
          () => 'failed',
        );
      await requested;
      const watchers = tf.fed.sites.flatMap((s) => s.nodes.map((n) => asMa(s, n)));
      try {
        const end = Date.now() + delayMs;
        while (Date.now() < end && !settled) {
          const found = await Promise.all(
            watchers.map((w) =>
              w.client.listSlivers({ pageSize: 10, pageToken: '', sliceUrn: urn }, { chain: w.chain }).then(
                (r) => r.slivers.length,
                () => 0,
              ),
            ),
          );
          if (found.some((n) => n > 0)) break;
        }
      } finally {
        for (const w of watchers) w.client.close();
      }
      if (!settled) await saProc.kill9();
      killedMidway = !settled;
      await creating;
      if (killedMidway) break;
      await deleteSlice(urn);
    }
    if (!saProc.running()) await tf.fed.restartSliceAuthority();
    expect(killedMidway, 'the SA was killed before the slice settled').toBe(true);
    // After recovery: either the slice is live with every sliver on its node, or it is gone with none.
    const outcome = await until(
      async () => {
        const slice = await getSlice(urn);
        const onNodes = await sliversOnNodes(urn);
        const state = slice ? SliceState[slice.state] : 'NONE';
        if (state === 'SLICE_STATE_READY') return onNodes.length === slice?.slivers.length ? { state, onNodes } : undefined;
        if (['NONE', 'SLICE_STATE_FAILED', 'SLICE_STATE_DELETED'].includes(state))
          return onNodes.length === 0 ? { state, onNodes } : undefined;
        return undefined;
      },
      30_000,
      'the interrupted CreateSlice settled',
    );
    console.log(
      `after kill -9 mid-CreateSlice the SA ${outcome.state === 'SLICE_STATE_READY' ? 'finished' : 'undid'} it (${outcome.state}, ${outcome.onNodes.length} slivers on nodes)`,
    );
    if (outcome.state === 'SLICE_STATE_READY') await deleteSlice(urn);
    expect(await sliversOnNodes(urn)).toEqual([]);
  });

  it('a slice expires and vanishes from every node', async () => {
    const res = await sa().createSlice(sliceRequest('short', { expiresAt: new Date(Date.now() + 8000) }));
    const slice = res.slice as Slice;
    expect(SliceState[slice.state]).toBe('SLICE_STATE_READY');
    expect(await sliversOnNodes(slice.urn)).toHaveLength(3);
    await until(
      async () => ((await sliversOnNodes(slice.urn)).length === 0 ? true : undefined),
      25_000,
      'the expired slice gone from every node',
    );
    const after = await until(
      async () => {
        const s = await getSlice(slice.urn);
        return !s || [SliceState.SLICE_STATE_EXPIRED, SliceState.SLICE_STATE_DELETED].includes(s.state)
          ? s
            ? SliceState[s.state]
            : 'NONE'
          : undefined;
      },
      10_000,
      'the slice record expired',
    );
    expect(after).not.toBe('SLICE_STATE_READY');
  });

  it('leaves nothing on any node once every slice is gone', async () => {
    const all: string[] = [];
    for (const site of tf.fed.sites) {
      for (const node of site.nodes) {
        const { client, chain } = asMa(site, node);
        try {
          const res = await client.listSlivers({ pageSize: 1000, pageToken: '', sliceUrn: '' }, { chain });
          for (const s of res.slivers)
            all.push(`${site.domain}/${node.name}: ${s.urn} of ${s.sliceUrn} (${OperationalState[s.operationalState]})`);
        } finally {
          client.close();
        }
      }
    }
    expect(all).toEqual([]);
  });
});

describe('fedlab up --once', () => {
  it('starts the three sites, deploys the service everywhere, exits 0 and leaves no process behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlab-up-'));
    try {
      const t0 = Date.now();
      const res = await runCli(['up', '--dir', dir, '--nodes', '1', '--once', '--timeout', '90s'], { timeoutMs: 150_000 });
      console.log(`fedlab up --once: exit ${res.code} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      expect(res.code, res.stdout + res.stderr).toBe(0);
      expect(res.stdout).toMatch(/ready: the service runs in all 3 slivers on 3 sites/);
      // The printed commands use the profiles the run wrote; the full form is printed once too.
      expect(res.stdout).toMatch(/fedlab node ls --profile \S+/);
      expect(res.stdout).toMatch(/fedlab slice ls --sa localhost:\d+ --tls-dir /);
      // The graceful stop sufficed: nothing had to be killed, and the sweep after it found no sliver
      // runtime (cgroup, process, work directory) and no emulab namespace left.
      expect(res.stdout).toMatch(/stopped; everything is in /);
      expect(res.stdout).not.toMatch(/had to kill|removed leftovers/);
      const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.includes(dir));
      expect(left).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 160_000);
});
