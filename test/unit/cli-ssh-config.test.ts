// The CLI's SSH pieces without a server: the ssh_config blocks and known_hosts lines rendered from a
// slice's manifest (aliases, host key aliases, quoting, what a node may not inject), and reading an
// SSH public key file for --ssh-key (a private key, several lines, an unreadable file: refused).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSshPublicKeyFile } from '../../cli/commands/slice/ssh-key-file.js';
import { sshFilesFor } from '../../cli/commands/sliver/ssh-config-files.js';
import { knownHostsLines, renderSshConfig, sshHostsOf } from '../../cli/commands/sliver/ssh-config-render.js';
import { CliExit } from '../../cli/cli-support.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { parseSshPublicKey, newSshKeyPair } from '../../services/core/identity/ssh-keys.js';
import { Slice } from '../../services/generated/fedlab/v1/slice_authority.js';

const dir = mkdtempSync(join(tmpdir(), 'fedlab-sshcfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hostKey = (): { line: string; fingerprint: string } => {
  const k = parseSshPublicKey(newSshKeyPair().public, 'k');
  return { line: `${k.type} ${k.blob.toString('base64')}`, fingerprint: k.fingerprint };
};
const keys = { n1a: hostKey(), n1b: hostKey(), n2a: hostKey() };

function sliver(site: string, node: string, key: { line: string; fingerprint: string } | undefined, username = 'web', port = 2201) {
  return {
    urn: `urn:fedlab:${site}:sliver:web-${node}`,
    nodeUrn: `urn:fedlab:${site}:node:${node}`,
    ...(key
      ? { ssh: { username, endpoint: { address: `127.0.0.1:${port}`, hostKey: key.line, hostKeyFingerprint: key.fingerprint } } }
      : {}),
  };
}

function slice(slivers: unknown[]): Slice {
  return Slice.fromJSON({ urn: 'urn:fedlab:a.test:slice:web', slivers });
}

describe('ssh-config rendering', () => {
  it('one Host block per sliver, aliased <slice>-<node>, with the node domain when two sites share a node name', () => {
    const s = slice([
      sliver('b.test', 'n1', keys.n1b, 'web', 2202),
      sliver('a.test', 'n1', keys.n1a, 'web', 2201),
      sliver('a.test', 'n2', keys.n2a, 'web-2', 2203),
    ]);
    const { hosts, skipped } = sshHostsOf(s);
    expect(skipped).toEqual([]);
    expect(hosts.map((h) => h.alias)).toEqual(['web-n1.a.test', 'web-n2', 'web-n1.b.test']);
    expect(hosts.map((h) => h.user)).toEqual(['web', 'web-2', 'web']);
    const text = renderSshConfig(s.urn, hosts, { identityFile: join(dir, 'id 1%'), knownHostsFile: join(dir, 'known_hosts') });
    const block = text.split('\n\n')[2] as string;
    expect(block.split('\n')).toEqual([
      `# urn:fedlab:a.test:sliver:web-n2 on urn:fedlab:a.test:node:n2, host key ${keys.n2a.fingerprint}`,
      'Host web-n2',
      '  HostName 127.0.0.1',
      '  Port 2203',
      '  User web-2',
      // Absolute, quoted, % doubled (ssh expands tokens in these paths).
      `  IdentityFile "${join(dir, 'id 1%%')}"`,
      '  IdentitiesOnly yes',
      '  PreferredAuthentications publickey',
      `  UserKnownHostsFile "${join(dir, 'known_hosts')}"`,
      '  StrictHostKeyChecking yes',
      '  HostKeyAlias fedlab-node.n2.a.test',
    ]);
    // known_hosts lines are filed under the same HostKeyAlias.
    expect(knownHostsLines(hosts)).toEqual([
      `fedlab-node.n1.a.test ${keys.n1a.line}`,
      `fedlab-node.n2.a.test ${keys.n2a.line}`,
      `fedlab-node.n1.b.test ${keys.n1b.line}`,
    ]);
    // Without an identity or a known_hosts file, ssh's defaults apply.
    const plain = renderSshConfig(s.urn, hosts);
    expect(plain).not.toMatch(/IdentityFile|IdentitiesOnly|UserKnownHostsFile/);
    expect(plain).toMatch(/StrictHostKeyChecking yes/);
  });

  it('leaves out slivers without a login and those whose login a node could use to inject configuration', () => {
    const bad = { ...keys.n2a, fingerprint: keys.n1a.fingerprint };
    const s = slice([
      sliver('a.test', 'n1', keys.n1a),
      sliver('a.test', 'n2', undefined),
      sliver('a.test', 'n3', keys.n1b, 'web\n  ProxyCommand sh -c id'),
      sliver('a.test', 'n4', bad),
    ]);
    const { hosts, skipped } = sshHostsOf(s);
    expect(hosts.map((h) => h.alias)).toEqual(['web-n1']);
    expect(skipped.map((x) => x.sliverUrn)).toEqual([
      'urn:fedlab:a.test:sliver:web-n2',
      'urn:fedlab:a.test:sliver:web-n3',
      'urn:fedlab:a.test:sliver:web-n4',
    ]);
    expect(skipped[0]?.reason).toMatch(/no SSH login/);
    expect(skipped[2]?.reason).toMatch(/host_key_fingerprint does not match/);
    expect(renderSshConfig(s.urn, hosts)).not.toMatch(/ProxyCommand/);
  });

  it('a slice with no SSH login is a failure naming each sliver; a path ssh_config cannot hold is bad input', () => {
    expect(() => sshFilesFor(slice([sliver('a.test', 'n2', undefined)]))).toThrow(CliExit);
    expect(() => sshFilesFor(slice([sliver('a.test', 'n2', undefined)]))).toThrow(
      /no sliver with an SSH login:\n {2}urn:fedlab:a\.test:sliver:web-n2/,
    );
    expect(() => sshFilesFor(slice([]))).toThrow(/it has no slivers/);
    expect(() => sshFilesFor(slice([sliver('a.test', 'n1', keys.n1a)]), { identityFile: '/tmp/a"b' })).toThrow(InvalidArgumentError);
  });
});

describe('--ssh-key files', () => {
  const pair = newSshKeyPair({ comment: 'me@laptop' });
  const file = (name: string, text: string): string => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('reads one public key line (comments and blank lines around it ignored), normalised', () => {
    const k = readSshPublicKeyFile(file('id.pub', `# mine\n\n${pair.public}\n`));
    expect(k.type).toBe('ssh-ed25519');
    expect(k.line).toBe(pair.public);
    expect(k.comment).toBe('me@laptop');
  });

  it('refuses a private key without echoing it, two keys, an empty file, a DSA key and a file it cannot read', () => {
    const priv = file('id', pair.private);
    expect(() => readSshPublicKeyFile(priv)).toThrow(/is a private key; give the public key/);
    try {
      readSshPublicKeyFile(priv);
    } catch (err) {
      expect((err as Error).message).not.toMatch(/BEGIN|AAAA/);
    }
    expect(() => readSshPublicKeyFile(file('two.pub', `${pair.public}\n${pair.public}\n`))).toThrow(/holds 2 lines/);
    expect(() => readSshPublicKeyFile(file('empty.pub', '\n# nothing\n'))).toThrow(/holds no key/);
    expect(() => readSshPublicKeyFile(file('dsa.pub', 'ssh-dss AAAAB3NzaC1kc3MAAACBAP8= x\n'))).toThrow(/--ssh-key .*dsa\.pub: DSA/);
    expect(() => readSshPublicKeyFile(join(dir, 'absent.pub'))).toThrow(/cannot read it \(ENOENT\)/);
    expect(() => readSshPublicKeyFile(dir)).toThrow(/not a regular file/);
    if (process.getuid?.() !== 0) {
      const locked = file('locked.pub', pair.public);
      chmodSync(locked, 0);
      expect(() => readSshPublicKeyFile(locked)).toThrow(/EACCES/);
    }
    for (const f of ['id', 'two.pub', 'empty.pub', 'dsa.pub'])
      expect(() => readSshPublicKeyFile(join(dir, f))).toThrow(InvalidArgumentError);
  });
});
