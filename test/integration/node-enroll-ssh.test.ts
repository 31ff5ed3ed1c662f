// `fedlab node enroll --nm-config FILE` names in EnrollNode the SSH endpoint the node manager configured
// there will serve (its fixed listen port; the host key made now at the file the node manager loads), so
// the site publishes it from the enrolment on: ListNodes shows it for a node that has never sent a
// heartbeat; likewise the underlay address of its network section. A config whose endpoint is known only
// once the node manager runs (port 0, no address) or that names neither is refused (exit 2) before the
// token is spent.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nmConfig } from '../../cli/kit/role-configs.js';
import { issueRoot } from '../../services/core/credentials/index.js';
import { NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import { loadOrCreateHostKey } from '../../services/node-manager/ssh/host-key.js';
import { runCli } from '../helpers/cli.js';
import { disposeParties, NODE_PRIVILEGES, siteParties, startSite, type Site } from '../helpers/ma-harness.js';

const D = 'enrolssh.test';
let site: Site;
let dir: string;

beforeAll(async () => {
  site = await startSite({ parties: await siteParties(D) });
  dir = mkdtempSync(join(tmpdir(), 'fedlab-enrol-ssh-'));
});
afterAll(async () => {
  await site?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await disposeParties();
});

/** A node manager config for node n1 with the given `ssh` section (none when undefined). */
function writeNmConfig(file: string, ssh: { listen: string; address?: string } | undefined, underlay?: string): string {
  const p = site.parties;
  return nmConfig({
    urn: `urn:fedlab:${D}:node:n1`,
    listen: { host: '127.0.0.1', port: 7556 },
    tls: { ca: join(dir, 'node', 'ca.pem'), cert: join(dir, 'node', 'cert.pem'), key: join(dir, 'node', 'key.pem') },
    trust_bundle: join(dir, 'bundle.json'),
    data_dir: join(dir, 'nm-data'),
    owner: { certificate: p.owner.certPath },
    ...(ssh ? { ssh } : {}),
    ...(underlay ? { network: { underlay_address: underlay } } : {}),
  }).writeTo(file);
}

describe('fedlab node enroll --nm-config', () => {
  it("enrols with the node manager's SSH endpoint, which the site publishes before any heartbeat", async () => {
    const p = site.parties;
    const { token } = await site
      .maClient()
      .createEnrollmentToken({ requestId: 'enrol-ssh', nodeName: 'n1', ownerUrn: p.owner.urn, ttlS: 0 });
    const { chain } = await issueRoot({
      key: p.owner.privateKey,
      issuer: p.owner.urn,
      subject: p.maUrn,
      subjectKey: p.ma.jwk as Record<string, unknown>,
      targets: [`urn:fedlab:${D}:node:*`],
      privileges: NODE_PRIVILEGES,
      ttlSeconds: 86_400,
    });
    writeFileSync(join(dir, 'owner.chain'), `${chain.join('\n')}\n`);
    writeFileSync(join(dir, 'token'), token);
    const enrol = (config: string) =>
      runCli([
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
        '127.0.0.1:7556',
        '--out',
        join(dir, 'node'),
        '--isolation',
        'process',
        '--nm-config',
        config,
        '--json',
      ]);

    // Refused with nothing spent: the port is picked at start, or the node serves no SSH.
    const later = await enrol(writeNmConfig(join(dir, 'nm-port0.json'), { listen: '127.0.0.1:0' }));
    expect(later.code, later.stderr).toBe(2);
    expect(later.stderr).toMatch(/known only once the node manager runs/);
    const none = await enrol(writeNmConfig(join(dir, 'nm-nossh.json'), undefined));
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr).toMatch(/serves no SSH/);

    const ok = await enrol(writeNmConfig(join(dir, 'nm.json'), { listen: '127.0.0.1:40222' }, '10.77.0.5'));
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).node_urn).toBe(`urn:fedlab:${D}:node:n1`);
    // The key the node manager will load at its start (made by the command, kept).
    const hostKey = loadOrCreateHostKey(join(dir, 'nm-data', 'ssh_host_ed25519_key'));
    const nodes = (await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UNSPECIFIED })).nodes;
    expect(nodes).toHaveLength(1);
    expect(nodes[0]?.lastHeartbeatAt).toBeUndefined();
    expect(nodes[0]?.ssh).toEqual({ address: '127.0.0.1:40222', hostKey: hostKey.publicLine, hostKeyFingerprint: hostKey.fingerprint });
    // The underlay address its links will use, from the config's network section.
    expect(nodes[0]?.underlayAddress).toBe('10.77.0.5');
  }, 60_000);
});
