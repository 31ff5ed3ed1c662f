// The node manager runs as root and works on directories a sliver's root can write (its /root, /home, /tmp, /var
// and an oci: image's writable layer). Tried as an attacker would (root only: runc, user namespaces, cgroups),
// each checked from the host: symbolic links a sliver puts in place of var/tmp, var/lib, var/cache, var/log and
// var/spool are never followed by a re-provision after a node manager restart (the host directories they name keep
// their owner and mode; the sliver comes back), nor by the disk quota's walk or a delete; and no host account but
// root can reach a sliver's files (a set-user-id program it leaves in /tmp cannot be run from the host).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OperationalState } from '../../services/generated/fedlab/v1/common.js';
import { createDriver } from '../../services/node-manager/drivers/select.js';
import { instanceId } from '../../services/node-manager/index.js';
import { silentLogger } from '../../services/core/log.js';
import { DATA_MARKER } from '../../services/node-manager/runtime/sliver-files.js';
import {
  canContain,
  cannotContainReason,
  collectExec,
  containerCheck,
  createSliver,
  startNodeManager,
  type NmHarness,
} from '../helpers/node-manager.js';

if (!canContain) console.log(`skipping the sliver host files suite: ${cannotContainReason}`);

const VAR_DIRS = ['tmp', 'lib', 'cache', 'log', 'spool'] as const;

/** Owner, group and mode of a host path, and what it holds. */
const snapshot = (dir: string) => {
  const st = statSync(dir);
  return { uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8), keep: readFileSync(join(dir, 'keep'), 'utf8') };
};

describe.skipIf(!canContain)("the node manager never follows a sliver's symbolic links, and host accounts cannot reach a sliver", () => {
  const victims: string[] = [];
  const harnesses: NmHarness[] = [];
  /** A host directory the sliver will point its links at: root's, 0755, with a file in it. */
  const victim = (label: string): string => {
    const d = mkdtempSync(join(tmpdir(), `fedlab-victim-${label}-`));
    chmodSync(d, 0o755);
    writeFileSync(join(d, 'keep'), `${label}\n`);
    victims.push(d);
    return d;
  };
  const run = async (h: NmHarness, urn: string, script: string) =>
    collectExec(
      h.client().exec({ sliverUrn: urn, argv: ['sh', '-c', script], env: {}, timeoutMs: 20_000 }, { chain: h.parties.ownerChain }),
    );
  const start = async (dataDir?: string) => {
    const h = await startNodeManager({ driver: 'container', ...(dataDir ? { dataDir } : {}) });
    harnesses.push(h);
    return h;
  };
  /** The node manager stops and the sliver's container dies with it (as on a host reboot); a new one starts on the same data. */
  const restartWithoutContainer = async (h: NmHarness, name: string) => {
    await h.stop();
    if (!containerCheck.ok) throw new Error('unreachable');
    execFileSync(containerCheck.runc, ['--root', join(h.dataDir, 'runc'), 'delete', '--force', name]);
    return start(h.dataDir);
  };

  afterAll(async () => {
    // Only the last harness of a data directory purges it (the earlier ones are stopped already).
    for (const h of harnesses.reverse()) await h.destroy().catch(() => undefined);
    for (const d of victims) rmSync(d, { recursive: true, force: true });
  });

  for (const legacy of [false, true]) {
    it(`a symlink in place of var/tmp, var/lib, var/cache, var/log or var/spool moves no host directory on re-provision after a restart${legacy ? ' (a sliver made before the data marker)' : ''}`, async () => {
      const name = legacy ? 'sym-old' : 'sym-new';
      const h = await start();
      const s = await createSliver(h, name);
      const targets = Object.fromEntries(VAR_DIRS.map((d) => [d, victim(d)]));
      const before = Object.fromEntries(VAR_DIRS.map((d) => [d, snapshot(targets[d] as string)]));
      const attack = VAR_DIRS.map((d) => `rm -rf /var/${d} && ln -s ${targets[d]} /var/${d}`).join(' && ');
      expect((await run(h, s.urn, `${attack} && echo done`)).stdout).toBe('done\n');
      // As the node manager keeps it: links in the sliver's own tree, owned by its root.
      const varDir = join(h.dataDir, 'slivers', name, 'data', 'var');
      expect(statSync(varDir).uid).toBe(h.nm.slivers.get(s.urn)?.ids?.hostId);
      if (legacy) rmSync(join(h.dataDir, 'slivers', name, DATA_MARKER), { force: true });

      const h2 = await restartWithoutContainer(h, name);
      for (const d of VAR_DIRS) expect(snapshot(targets[d] as string), d).toEqual(before[d]);
      // The sliver comes back (its links are its own business), or says clearly why not.
      const rec = (await h2.client().getSliver({ sliverUrn: s.urn }, { chain: h2.parties.ownerChain })).sliver;
      if (rec?.operationalState !== OperationalState.OPERATIONAL_STATE_READY) expect(rec?.error).toMatch(/not a directory|symbolic link/);
      else expect((await run(h2, s.urn, 'readlink /var/tmp; id -u')).stdout).toBe(`${targets.tmp}\n0\n`);
      for (const d of VAR_DIRS) expect(snapshot(targets[d] as string), d).toEqual(before[d]);
    });
  }

  it("the disk quota's walk and a delete never follow a sliver's links to host directories", async () => {
    const h = await start();
    const s = await createSliver(h, 'sym-del');
    const target = victim('del');
    writeFileSync(join(target, 'big'), Buffer.alloc(4 << 20, 1));
    const before = snapshot(target);
    await run(
      h,
      s.urn,
      `ln -s ${target} /root/link; ln -s ${target} /tmp/link; ln -s / /var/lib/rootlink; mkdir -p /home/a && ln -s ${target} /home/a/b`,
    );
    const driver = createDriver({
      kind: 'container',
      workRoot: join(h.dataDir, 'slivers'),
      instance: instanceId(h.dataDir),
      log: silentLogger(),
    });
    expect(await driver.diskUsageBytes('sym-del')).toBeLessThan(1 << 20);
    await h.client().deleteSliver({ sliverUrn: s.urn }, { chain: h.parties.ownerChain });
    expect(existsSync(join(h.dataDir, 'slivers', 'sym-del'))).toBe(false);
    expect(snapshot(target)).toEqual(before);
    expect(statSync(join(target, 'big')).size).toBe(4 << 20);
  });

  it("no host account but root reaches a sliver's files: a set-user-id program it leaves in /tmp cannot be run from the host", async () => {
    const h = await start();
    const s = await createSliver(h, 'sym-suid');
    const out = await run(h, s.urn, 'cp /usr/bin/id /tmp/sid && chmod 4755 /tmp/sid && echo secret > /tmp/note && ls -l /tmp/sid');
    expect(out.stdout).toMatch(/^-rwsr-xr-x/);
    const dir = join(h.dataDir, 'slivers', 'sym-suid');
    const sid = join(dir, 'data', 'tmp', 'sid');
    // Root sees it; `nobody` (and any other host account) cannot get to it.
    expect(statSync(sid).mode & 0o4000).toBe(0o4000);
    // runuser, not setpriv: setpriv keeps root's capabilities until its exec, so its exec path lookup is root's.
    const asNobody = (...argv: string[]) => spawnSync('/usr/sbin/runuser', ['-u', 'nobody', '--', ...argv], { encoding: 'utf8' });
    const ran = asNobody(sid, '-u');
    expect(ran.status, ran.stdout).not.toBe(0);
    expect(ran.stderr).toMatch(/Permission denied/);
    expect(asNobody('/bin/cat', join(dir, 'data', 'tmp', 'note')).stderr).toMatch(/Permission denied/);
    expect(asNobody('/bin/ls', join(dir, 'data')).stderr).toMatch(/Permission denied/);
    // The sliver still works: its root traverses to its own root file system and data.
    expect((await run(h, s.urn, 'cat /tmp/note; /tmp/sid -u')).stdout).toBe('secret\n0\n');
  });
});
