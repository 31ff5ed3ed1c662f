// The service provider's `ssh_keys` config: its operators' SSH public keys, checked at start-up by the
// one key check (a bad key stops it naming the field), and listed as the provider's user on every
// slice a deployment creates (normalised, a key given twice kept once).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { compileConfig } from '../../services/core/config.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { spConfigSchema, SP_PATH_FIELDS, toSpSettings } from '../../services/service-provider/config.js';
import { newSshKeyPair } from '../../services/core/identity/ssh-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'fedlab-spssh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  role: 'sp',
  urn: 'urn:fedlab:acme.test:sp:acme',
  listen: { host: '127.0.0.1', port: 0 },
  tls: { ca: 'pki/ca.pem', cert: 'pki/cert.pem', key: 'pki/key.pem' },
  trust_bundle: 'pki/bundle.json',
  data_dir: 'data',
  admins: ['urn:fedlab:acme.test:user:alice'],
  slice_authority: { urn: 'urn:fedlab:plc.test:authority:sa', endpoint: '127.0.0.1:7301' },
};

const compile = (value: unknown) => {
  const file = join(dir, 'sp.json');
  writeFileSync(file, JSON.stringify(value));
  return compileConfig(spConfigSchema, { file }, SP_PATH_FIELDS);
};

describe('service provider config: ssh_keys', () => {
  it('none by default: slices are created with no users', () => {
    expect(toSpSettings(compile(base)).deployments.sliceUsers).toEqual([]);
  });

  it("lists the provider with its operators' keys on the slices it creates", () => {
    const a = newSshKeyPair({ comment: 'ops@acme' }).public;
    const b = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }).public;
    const settings = toSpSettings(compile({ ...base, ssh_keys: [`  ${a}  `, b, a] }));
    expect(settings.deployments.sliceUsers).toEqual([{ urn: base.urn, sshKeys: [a, b] }]);
  });

  it.each([['ssh-dss AAAAB3NzaC1kc3MAAACBAP8='], ['not a key'], ['-----BEGIN OPENSSH PRIVATE KEY-----']])(
    'refuses %s naming the field',
    (key) => {
      expect(() => compile({ ...base, ssh_keys: [key] })).toThrow(InvalidArgumentError);
      expect(() => compile({ ...base, ssh_keys: [key] })).toThrow(/ssh_keys\.0: must be an OpenSSH public key line/);
    },
  );
});
