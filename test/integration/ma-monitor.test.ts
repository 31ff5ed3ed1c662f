// Node health: heartbeats come from the node's own certificate only; a node is DOWN after exactly three missed
// intervals (the clock is moved by hand) and UP at the next heartbeat; health is written in coalesced batches
// and survives a restart; ListNodes pages and filters by health.
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../services/core/rpc/client.js';
import { NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService } from '../../services/generated/fedlab/v1/management_authority.js';
import { ManualClock } from '../../services/core/clock.js';
import { TABLES, type NodeHealthRecord } from '../../services/management-authority/records.js';
import {
  enrolFakeNode,
  siteParties,
  startSite,
  type FakeNode,
  type Site,
  type SiteParties,
  disposeParties,
} from '../helpers/ma-harness.js';

const INTERVAL = 200;
let parties: SiteParties;
let site: Site;
let nodes: FakeNode[] = [];
const clock = new ManualClock(Date.now());

beforeAll(async () => {
  parties = await siteParties('mon.test');
  site = await startSite({ parties, clock, manualTimers: true });
  nodes = [];
  for (let i = 0; i < 5; i++) nodes.push(await enrolFakeNode(site, `m${i}`));
});
afterAll(async () => {
  for (const n of nodes) n.close();
  await site?.destroy();
  await disposeParties();
});

const health = (i: number) => site.ma!.registry.get(nodes[i]!.urn)!.up;

describe('node health', () => {
  it('is DOWN from enrolment until the first heartbeat, then UP', async () => {
    expect(health(0)).toBe(false);
    await nodes[0]!.beat();
    expect(health(0)).toBe(true);
  });

  it('goes DOWN after exactly three missed intervals and UP again on the next heartbeat', async () => {
    const reg = site.ma!.registry;
    await nodes[1]!.beat();
    clock.advance(3 * INTERVAL - 1);
    expect(reg.check()).toEqual([]);
    expect(health(1)).toBe(true);
    clock.advance(1);
    expect(reg.check().map((c) => c.nodeUrn)).toContain(nodes[1]!.urn);
    expect(health(1)).toBe(false);
    const node = (await site.maClient().getNode({ nodeUrn: nodes[1]!.urn })).node!;
    expect(node.health).toBe(NodeHealth.NODE_HEALTH_DOWN);
    expect(node.missedHeartbeats).toBe(3);
    await nodes[1]!.beat();
    expect(health(1)).toBe(true);
  });

  it('takes heartbeats only from the node itself', async () => {
    const beat = (tls: { caCerts: string; cert: string; key: string }, nodeUrn: string) => {
      const c = createClient(ManagementAuthorityService, { address: site.address, tls, serverUrn: parties.maUrn });
      return c
        .heartbeat({ nodeUrn, sequence: 1, sliverCount: 0, version: 'x', endpoint: '' })
        .catch((e: unknown) => e)
        .finally(() => c.close());
    };
    // Another node's certificate, naming the first node.
    expect(((await beat(nodes[2]!.tls, nodes[3]!.urn)) as { code: number }).code).toBe(Status.PERMISSION_DENIED);
    // A certificate for a node that never enrolled (issued straight by the CA).
    const rogue = await parties.pki.issue('urn:fedlab:mon.test:node:rogue');
    expect(((await beat({ caCerts: parties.pki.caPem, cert: rogue.certPem, key: rogue.keyPem }, rogue.urn)) as { code: number }).code).toBe(
      Status.NOT_FOUND,
    );
    // The right URN but another key than the one enrolled.
    const twin = await parties.pki.issue(nodes[4]!.urn);
    const err = (await beat({ caCerts: parties.pki.caPem, cert: twin.certPem, key: twin.keyPem }, nodes[4]!.urn)) as Error;
    expect((err as unknown as { code: number }).code).toBe(Status.PERMISSION_DENIED);
    expect(err.message).toMatch(/key/);
    expect(health(4)).toBe(false);
  });

  it('writes health in coalesced batches, routine data at most every twelve intervals', async () => {
    const reg = site.ma!.registry;
    await reg.flush();
    clock.advance(12 * INTERVAL);
    for (let k = 0; k < 5; k++) for (const n of nodes) await n.beat();
    // Twenty-five heartbeats, one record per node.
    expect(await reg.flush()).toBe(5);
    expect(await reg.flush()).toBe(0);
    // Routine heartbeats soon after are not written again; a change is.
    for (const n of nodes) await n.beat();
    await nodes[3]!.beat({ capacity: { cpuMillis: 500, memMb: 1024, diskMb: 1024, pids: 512 } });
    expect(await reg.flush()).toBe(1);
    const rec = await site.service!.store.table<NodeHealthRecord>(TABLES.nodeHealth).get(nodes[0]!.urn);
    expect(rec?.up).toBe(true);
    expect(rec?.sequence).toBeGreaterThan(1);
  });

  it('lists nodes in pages, filtered by health', async () => {
    clock.advance(10 * INTERVAL);
    site.ma!.registry.check();
    await nodes[0]!.beat();
    await nodes[2]!.beat();
    const c = site.maClient();
    const up = await c.listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP });
    expect(up.nodes.map((n) => n.urn)).toEqual([nodes[0]!.urn, nodes[2]!.urn]);
    const down = await c.listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_DOWN });
    expect(down.nodes).toHaveLength(3);
    const seen: string[] = [];
    let token = '';
    do {
      const page = await c.listNodes({ pageSize: 2, pageToken: token, health: NodeHealth.NODE_HEALTH_UNSPECIFIED });
      expect(page.nodes.length).toBeLessThanOrEqual(2);
      seen.push(...page.nodes.map((n) => n.urn));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual(nodes.map((n) => n.urn).sort());
    const bad = await c.listNodes({ pageSize: 2, pageToken: 'bm9wZQ', health: 0 }).catch((e: unknown) => e);
    expect((bad as { code: number }).code).toBe(Status.INVALID_ARGUMENT);
  });
});
