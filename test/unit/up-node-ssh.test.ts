// fedlab up names a node's SSH endpoint in EnrollNode (cli/node-ssh-endpoint.ts): the endpoint its node manager
// will publish, derived before that node manager's first start — the listen port fixed where the config
// would pick one, the host key made by the node manager's own loader at the file it will load — so that
// what the enrolment says is what GetNodeInfo says once the node runs. A config without SSH, or whose
// address is known only once a port is bound, gives none.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkSshEndpoint } from '../../services/core/identity/ssh-keys.js';
import { loadOrCreateHostKey } from '../../services/node-manager/ssh/host-key.js';
import { plannedSshEndpoint, withFixedSshPort } from '../../cli/node-ssh-endpoint.js';
import type { NmConfigInput } from '../../cli/kit/role-configs.js';

describe('fedlab up: the SSH endpoint a node enrols with', () => {
  let dir: string;
  let base: NmConfigInput;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-up-ssh-'));
    base = {
      urn: 'urn:fedlab:plc.test:node:n1',
      listen: { host: '127.0.0.1', port: 0 },
      tls: { ca: join(dir, 'ca.pem'), cert: join(dir, 'c.pem'), key: join(dir, 'k.pem') },
      trust_bundle: join(dir, 'b.json'),
      data_dir: join(dir, 'data'),
      owner: { certificate: join(dir, 'owner.pem') },
      ssh: { listen: '127.0.0.1:0' },
    };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('fixes a port picked at start, makes the host key the node manager will load, and names both', () => {
    // Port 0 and no address: not known before the node manager binds.
    expect(plannedSshEndpoint(base)).toBeUndefined();
    const fixed = withFixedSshPort(base, 40_022).content;
    expect(fixed.ssh?.listen).toBe('127.0.0.1:40022');
    const ep = plannedSshEndpoint(fixed);
    expect(ep?.address).toBe('127.0.0.1:40022');
    // What the MA checks at enrolment, and the key the node manager loads at its start (made once, 0600).
    expect(() => checkSshEndpoint(ep!, 'ssh')).not.toThrow();
    const file = join(dir, 'data', 'ssh_host_ed25519_key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const loaded = loadOrCreateHostKey(file);
    expect(ep?.hostKey).toBe(loaded.publicLine);
    expect(ep?.hostKeyFingerprint).toBe(loaded.fingerprint);
    expect(plannedSshEndpoint(fixed)).toEqual(ep);
  });

  it('keeps a fixed port and a published address; a config without SSH gives none', () => {
    expect(withFixedSshPort({ ...base, ssh: { listen: '127.0.0.1:2222' } }, 40_022).content.ssh?.listen).toBe('127.0.0.1:2222');
    const published = plannedSshEndpoint({ ...base, ssh: { listen: '0.0.0.0:0', address: 'node1.example.test:22' } });
    expect(published?.address).toBe('node1.example.test:22');
    const { ssh: _none, ...noSsh } = base;
    expect(plannedSshEndpoint(noSsh)).toBeUndefined();
    expect(withFixedSshPort(noSsh, 40_022).content.ssh).toBeUndefined();
  });
});
