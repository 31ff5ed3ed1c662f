// `fedlab node token | enroll | ls` as a site admin and a node owner would use them, against a real MA.
import { mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueRoot } from '../../services/core/credentials/index.js';
import { runCli } from '../helpers/cli.js';
import { NODE_PRIVILEGES, siteParties, startSite, type Site, disposeParties } from '../helpers/ma-harness.js';

let site: Site;
let dir: string;

beforeAll(async () => {
  site = await startSite({ parties: await siteParties('cli.test') });
  dir = mkdtempSync(join(tmpdir(), 'fedlab-node-cli-'));
});
afterAll(async () => {
  await site?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await disposeParties();
});

describe('fedlab node', () => {
  it('makes a token, enrols a node with it once, and lists the node', async () => {
    const p = site.parties;
    const tok = await runCli([
      'node',
      'token',
      '--ma',
      site.address,
      '--tls-dir',
      p.admin.dir,
      '--name',
      'cli1',
      '--owner',
      p.owner.urn,
      '--ttl',
      '1h',
    ]);
    expect(tok.code, tok.stderr).toBe(0);
    const token = tok.stdout.trim();
    expect(token).toMatch(/^fedlab-enrol\./);
    expect(tok.stderr).toMatch(/urn:fedlab:cli\.test:node:cli1/);
    const chain = await issueRoot({
      key: p.owner.privateKey,
      issuer: p.owner.urn,
      subject: p.maUrn,
      subjectKey: p.ma.jwk as Record<string, unknown>,
      targets: ['urn:fedlab:cli.test:node:*'],
      privileges: NODE_PRIVILEGES,
      ttlSeconds: 86_400,
    });
    writeFileSync(join(dir, 'owner.chain'), `${chain.chain.join('\n')}\n`);
    writeFileSync(join(dir, 'token'), token);
    const out = join(dir, 'node');
    const args = [
      'node',
      'enroll',
      '--enrol',
      site.enrolAddress,
      '--ca',
      p.pki.caCertPath,
      '--ma-urn',
      p.maUrn,
      '--token-file',
      join(dir, 'token'),
      '--owner-chain',
      join(dir, 'owner.chain'),
      '--endpoint',
      '127.0.0.1:7555',
      '--out',
      out,
      '--json',
    ];
    const enrolled = await runCli(args);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(JSON.parse(enrolled.stdout).node_urn).toBe('urn:fedlab:cli.test:node:cli1');
    expect(statSync(join(out, 'key.pem')).mode & 0o777).toBe(0o600);
    // Once only.
    const again = await runCli([...args.slice(0, -3), '--out', join(dir, 'node2')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already used/);

    const ls = await runCli(['node', 'ls', '--ma', site.address, '--ma-urn', p.maUrn, '--tls-dir', p.admin.dir, '--json']);
    expect(ls.code, ls.stderr).toBe(0);
    const nodes = JSON.parse(ls.stdout).nodes as { urn: string; health: string; last_heartbeat_at: string | null }[];
    expect(nodes).toEqual([expect.objectContaining({ urn: 'urn:fedlab:cli.test:node:cli1', health: 'down', last_heartbeat_at: null })]);
    const table = await runCli(['node', 'ls', '--ma', site.address, '--tls-dir', p.admin.dir]);
    expect(table.stdout).toMatch(/^NODE\s+HEALTH\s+ENDPOINT/);
    expect(table.stdout).toMatch(/cli1\s+DOWN\s+127\.0\.0\.1:7555/);
    const up = await runCli(['node', 'ls', '--ma', site.address, '--tls-dir', p.admin.dir, '--health', 'up']);
    expect(up.stdout.trim()).toBe('no nodes');
  });

  it('refuses bad input with exit 2 and refusals with exit 1', async () => {
    const p = site.parties;
    const badAddr = await runCli(['node', 'ls', '--ma', 'nowhere', '--tls-dir', p.admin.dir]);
    expect(badAddr.code).toBe(2);
    const noTls = await runCli(['node', 'ls', '--ma', site.address]);
    expect(noTls.code).toBe(2);
    expect(noTls.stderr).toMatch(/--tls-dir/);
    const notAdmin = await runCli(['node', 'token', '--ma', site.address, '--tls-dir', p.sp.dir, '--name', 'x1', '--owner', p.owner.urn]);
    expect(notAdmin.code).toBe(1);
    expect(notAdmin.stderr).toMatch(/administrators/);
  });
});
