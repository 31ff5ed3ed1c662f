// The purge of a node manager instance (services/node-manager/drivers/instance-purge.ts) removes what its
// sliver network left, found without its config: the slivers' namespace names (fl-<instance>-*), the
// host-side veths and link ports whose aliases name the instance, its nftables tables fedlab-<instance>
// (inet and bridge), and the bridge it is told of once no port is left on it — and nothing of another
// instance (its namespace, veth and tables stay; a bridge with another's port on it stays). Root only
// (ip, nft); the objects are made by hand with names no node manager uses, and removed afterwards whatever
// the outcome. Skipped, saying why, elsewhere.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../services/core/log.js';
import { purgeInstance } from '../../services/node-manager/drivers/instance-purge.js';
import { linkAlias } from '../../services/node-manager/network/link-names.js';
import { netnsName, tableName, vethAlias } from '../../services/node-manager/network/net-names.js';

function tools(): string {
  if (process.getuid?.() !== 0) return 'needs root (ip netns, nft)';
  for (const t of ['ip', 'nft']) {
    try {
      execFileSync(t, ['-V'], { stdio: 'ignore' });
    } catch {
      return `${t} is unavailable`;
    }
  }
  return '';
}
const skipReason = tools();
if (skipReason) console.log(`skipping instance purge tests: ${skipReason}`);

const sh = (cmd: string, args: readonly string[]): string => execFileSync(cmd, [...args], { encoding: 'utf8' });
const links = (): { ifname: string; ifalias?: string }[] =>
  JSON.parse(sh('ip', ['-j', 'link', 'show'])) as { ifname: string; ifalias?: string }[];
const tables = (): string[] =>
  (JSON.parse(sh('nft', ['-j', 'list', 'tables'])) as { nftables: { table?: { family: string; name: string } }[] }).nftables.flatMap((o) =>
    o.table ? [`${o.table.family} ${o.table.name}`] : [],
  );

describe.skipIf(skipReason !== '')('purging a node manager instance removes its sliver networks, and only its own', () => {
  const tag = randomBytes(3).toString('hex');
  const mine = `nm-${randomBytes(6).toString('hex')}`;
  const theirs = `nm-${randomBytes(6).toString('hex')}`;
  const bridge = `flpb${tag}`;
  const otherBridge = `flpo${tag}`;
  const made = { netns: [] as string[], links: [] as string[], tables: [] as string[] };
  const root = mkdtempSync(join(tmpdir(), 'fedlab-purge-'));

  /** A sliver namespace of `instance` with a veth into it whose host end carries `alias`, on `master`. */
  const sliverLeftovers = (instance: string, sliver: string, host: string, alias: string, master?: string): string => {
    const ns = netnsName(instance, sliver);
    sh('ip', ['netns', 'add', ns]);
    made.netns.push(ns);
    sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    made.links.push(host);
    sh('ip', ['link', 'set', host, 'alias', alias]);
    if (master) sh('ip', ['link', 'set', host, 'master', master]);
    return ns;
  };
  const tablesOf = (instance: string): void => {
    for (const family of ['inet', 'bridge']) {
      sh('nft', ['add', 'table', family, tableName(instance)]);
      made.tables.push(`${family} ${tableName(instance)}`);
    }
  };

  afterAll(() => {
    const have = new Set(links().map((l) => l.ifname));
    for (const l of made.links) if (have.has(l)) execFileSync('ip', ['link', 'del', l], { stdio: 'ignore' });
    for (const ns of made.netns) if (existsSync(`/run/netns/${ns}`)) execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    const left = new Set(tables());
    for (const t of made.tables) if (left.has(t)) execFileSync('nft', ['delete', 'table', ...t.split(' ')], { stdio: 'ignore' });
    rmSync(root, { recursive: true, force: true });
  });

  it('namespace names, veths, link ports, tables and the emptied bridge of the instance go; another instance’s stay', async () => {
    for (const b of [bridge, otherBridge]) {
      sh('ip', ['link', 'add', b, 'type', 'bridge']);
      made.links.push(b);
    }
    const a = sliverLeftovers(mine, 'a', `fvp${tag}a`, vethAlias(mine, { sliver: 'a', sliceMark: 7, sliceHash: 'abc' }), bridge);
    // A link port of the instance's sliver b (its namespace made by hand too).
    const b = sliverLeftovers(mine, 'b', `flp${tag}b`, linkAlias(mine, { kind: 'port', vni: 7, sliver: 'b', ifname: 'eth1' }));
    // Another instance: its sliver's veth sits on the other bridge, which is named to the purge too below.
    const other = sliverLeftovers(
      theirs,
      'c',
      `fvp${tag}c`,
      vethAlias(theirs, { sliver: 'c', sliceMark: 9, sliceHash: 'def' }),
      otherBridge,
    );
    tablesOf(mine);
    tablesOf(theirs);

    const dataDir = join(root, 'data');
    const base = { kind: 'auto' as const, workRoot: join(dataDir, 'slivers'), log: silentLogger() };
    const removed = await purgeInstance({ ...base, instance: mine, bridge });
    expect(removed).toEqual(expect.arrayContaining([`netns ${a}`, `netns ${b}`, `nftables fedlab-${mine}`, `bridge ${bridge}`]));

    expect(existsSync(`/run/netns/${a}`)).toBe(false);
    expect(existsSync(`/run/netns/${b}`)).toBe(false);
    const names = links().map((l) => l.ifname);
    expect(names).not.toContain(`fvp${tag}a`);
    expect(names).not.toContain(`flp${tag}b`);
    expect(names).not.toContain(bridge);
    expect(tables()).not.toContain(`inet fedlab-${mine}`);
    expect(tables()).not.toContain(`bridge fedlab-${mine}`);
    // Nothing of the other instance.
    expect(existsSync(`/run/netns/${other}`)).toBe(true);
    expect(names).toContain(`fvp${tag}c`);
    expect(names).toContain(otherBridge);
    expect(tables()).toEqual(expect.arrayContaining([`inet fedlab-${theirs}`, `bridge fedlab-${theirs}`]));

    // A bridge with a port of another instance on it stays, even when named; a second purge finds nothing.
    expect(await purgeInstance({ ...base, instance: mine, bridge: otherBridge })).toEqual([]);
    tablesOf(mine);
    expect(await purgeInstance({ ...base, instance: mine, bridge: otherBridge })).toEqual([`nftables fedlab-${mine}`]);
    expect(links().map((l) => l.ifname)).toContain(otherBridge);
  }, 60_000);
});
