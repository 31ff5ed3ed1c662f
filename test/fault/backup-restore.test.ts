// Backup and restore of a lost store, on a real federation (two sites of two nodes each and a slice
// authority, every party a `fedlab serve` process): `fedlab backup` of the slice authority and of one
// site's MA while they serve; more work after the backup; both stores lost; `fedlab restore` into fresh
// data directories (refusing a directory that is not empty, a backup of another service and a damaged
// file, each with exit 2); the services start on what was restored; `fedlab federation check` reports
// exactly what changed since the backup — and `--fix` reconciles it.
import { copyFileSync, readFileSync, renameSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFederation, SiteRuntime } from '../../cli/up/federation.js';
import { Store } from '../../services/core/store/store.js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceState, type CreateSliceRequest, type Slice } from '../../services/generated/fedlab/v1/slice_authority.js';
import { TABLES as MA_TABLES } from '../../services/management-authority/records.js';
import { checkArgsFor } from '../chaos/check-flags.js';
import { runCli } from '../helpers/cli.js';
import { openFederation, type TestFederation } from '../helpers/federation.js';

let tf: TestFederation;
let fed: LocalFederation;

function request(name: string): CreateSliceRequest {
  return {
    users: [],
    requestId: `req-${name}`,
    name,
    description: 'backup test',
    mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
    sites: fed.sites.map((s) => ({
      site: s.domain,
      request: {
        nodes: { nodeUrns: [], count: 1, clientIds: [] },
        resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
        links: [],
        exclusive: false,
        requestDocument: '',
        requestDocumentFormat: '',
      },
    })),
    start: true,
    wait: true,
  };
}

async function withSa<T>(fn: (sa: ReturnType<LocalFederation['saClient']>) => Promise<T>): Promise<T> {
  const sa = fed.saClient();
  try {
    return await fn(sa);
  } finally {
    sa.close();
  }
}

const sliverAt = (slice: Slice, site: SiteRuntime): string => slice.slivers.find((s) => s.aggregateUrn === site.maUrn)?.urn ?? '';

type JsonFinding = { kind: string; site?: string; slice_urn?: string; sliver_urn?: string; command?: string };

describe('backup and restore', { timeout: 240_000 }, () => {
  beforeAll(async () => {
    tf = await openFederation({ sites: ['planetlab', 'protogeni'], nodes: 2, driver: 'process', heartbeatMs: 500, logLevel: 'info' });
    fed = tf.fed;
    await fed.startSites();
    await fed.peerDomains();
    await fed.delegateToSliceAuthority();
    await fed.startSliceAuthority();
  }, 300_000);

  afterAll(async () => {
    await tf?.destroy();
  }, 60_000);

  it('restores a slice authority and a site from online backups; the check names what changed since, and --fix reconciles it', async () => {
    const [plc, geni] = fed.sites as [SiteRuntime, SiteRuntime];
    const [gone, kept] = await withSa(async (sa) => [
      (await sa.createSlice(request('gone'))).slice as Slice,
      (await sa.createSlice(request('kept'))).slice as Slice,
    ]);
    expect([gone.state, kept.state]).toEqual([SliceState.SLICE_STATE_READY, SliceState.SLICE_STATE_READY]);

    // Online: both keep serving while their stores are read.
    const saBackup = join(tf.dir, 'sa.backup');
    const maBackup = join(tf.dir, 'plc-ma.backup');
    const [saOut, maOut, listed] = await Promise.all([
      runCli(['backup', '--config', fed.homePaths.saConfig, '--out', saBackup, '--json']),
      runCli(['backup', '--config', plc.paths.maConfig, '--out', maBackup]),
      withSa((sa) => sa.listSlices({ pageSize: 0, pageToken: '', state: SliceState.SLICE_STATE_UNSPECIFIED })),
    ]);
    expect(saOut.code, saOut.stderr).toBe(0);
    expect(maOut.code, maOut.stderr).toBe(0);
    expect(listed.slices).toHaveLength(2);
    const saMeta = JSON.parse(saOut.stdout) as { service_urn: string; role: string; entries: number; digest: string };
    expect(saMeta).toMatchObject({ service_urn: `urn:fedlab:${fed.home}:authority:sa`, role: 'sa' });
    expect(saMeta.entries).toBeGreaterThan(0);
    expect(maOut.stdout).toMatch(/^backed up urn:fedlab:plc\.test:authority:ma \(ma\) as of .*: \d+ entries, sha256:[0-9a-f]{64}, in /);
    // A backup is never overwritten.
    expect((await runCli(['backup', '--config', plc.paths.maConfig, '--out', maBackup])).code).toBe(2);

    // Work after the backup: a new slice, and one deleted.
    const later = await withSa(async (sa) => {
      const made = (await sa.createSlice(request('later'))).slice as Slice;
      expect((await sa.deleteSlice({ sliceUrn: gone.urn })).slice?.state).toBe(SliceState.SLICE_STATE_DELETED);
      return made;
    });
    expect(later.state).toBe(SliceState.SLICE_STATE_READY);

    // A restore refuses a data directory that is not empty, a backup of another service and a damaged file.
    const busy = await runCli(['restore', '--config', fed.homePaths.saConfig, '--in', saBackup]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/nothing was restored: the data directory .* is not empty/);
    const other = await runCli(['restore', '--config', plc.paths.maConfig, '--in', saBackup, '--data-dir', join(tf.dir, 'empty')]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /is a backup of urn:fedlab:plc\.test:authority:sa \(sa\), but .* is the config of urn:fedlab:plc\.test:authority:ma/,
    );
    const damaged = join(tf.dir, 'damaged.backup');
    copyFileSync(maBackup, damaged);
    truncateSync(damaged, statSync(damaged).size - 10);
    const broken = await runCli(['restore', '--config', plc.paths.maConfig, '--in', damaged, '--data-dir', join(tf.dir, 'empty')]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/trailer|truncated/);

    // Both stores lost; restored into fresh data directories; the services start on them.
    await fed.sa?.stop();
    await plc.ma.stop();
    renameSync(fed.homePaths.saData, `${fed.homePaths.saData}.lost`);
    renameSync(plc.paths.maData, `${plc.paths.maData}.lost`);
    for (const [config, file] of [
      [fed.homePaths.saConfig, saBackup],
      [plc.paths.maConfig, maBackup],
    ] as const) {
      const res = await runCli(['restore', '--config', config, '--in', file, '--json']);
      expect(res.code, res.stderr).toBe(0);
    }
    // The restored MA holds exactly what the lost one held at backup time, entry for entry.
    const restored = await Store.open(plc.paths.maData);
    expect((await restored.table(MA_TABLES.slivers).values()).map((s) => (s as { sliceUrn: string }).sliceUrn).sort()).toEqual(
      [gone.urn, kept.urn].sort(),
    );
    await restored.close();
    await plc.ma.start();
    await fed.restartSliceAuthority();
    await fed.waitNodesUp();

    const args = ['federation', 'check', ...checkArgsFor(fed), '--json'];
    const found = await runCli(args, { timeoutMs: 120_000 });
    expect(found.code, `${found.stdout}\n${found.stderr}`).toBe(1);
    const findings = (JSON.parse(found.stdout) as { findings: JsonFinding[] }).findings;
    const summary = findings.map((f) => `${f.kind} ${f.site} ${f.slice_urn} ${f.sliver_urn ?? ''}`).sort();
    expect(summary).toEqual(
      [
        // The restored MA books the deleted slice's sliver, which its node no longer runs.
        `ghost plc.test ${gone.urn} ${sliverAt(gone, plc)}`,
        // The restored SA still lists the deleted slice, whose sliver the other site no longer holds.
        `ghost geni.test ${gone.urn} ${sliverAt(gone, geni)}`,
        // The new slice's sliver runs on a node of the restored site, which has no record of it.
        `orphan plc.test ${later.urn} ${sliverAt(later, plc)}`,
        // The other site holds the new slice, which the restored SA never heard of.
        `held geni.test ${later.urn} `,
      ].sort(),
    );
    const byKind = (k: string, site: string): JsonFinding => findings.find((f) => f.kind === k && f.site === site) as JsonFinding;
    expect(byKind('ghost', 'plc.test').command).toMatch(/^fedlab site release --ma /);
    expect(byKind('ghost', 'geni.test').command).toMatch(/^fedlab slice delete /);
    expect(byKind('orphan', 'plc.test').command).toMatch(/^fedlab sliver delete /);
    expect(byKind('held', 'geni.test').command).toMatch(/^fedlab site release --ma /);

    const fixed = await runCli([...args, '--fix'], { timeoutMs: 180_000 });
    expect(fixed.code, `${fixed.stdout}\n${fixed.stderr}`).toBe(0);
    const again = await runCli(args, { timeoutMs: 120_000 });
    expect(again.code, again.stdout).toBe(0);
    // What both the backup and the present agree on is untouched.
    const now = await withSa(async (sa) => (await sa.getSlice({ sliceUrn: kept.urn })).slice as Slice);
    expect(now.state).toBe(SliceState.SLICE_STATE_READY);
    expect(readFileSync(saBackup).subarray(0, 16).toString()).toBe('fedlab-backup 1\n');
  });
});
