// SSH public keys of slice users and node endpoints: which are accepted, what the refusals say,
// and fingerprints as `ssh-keygen -l` prints them (the expected values below are its output).
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../services/core/errors.js';
import {
  checkSliceUsers,
  checkSshEndpoint,
  MAX_KEYS_PER_USER,
  MAX_SLICE_USERS,
  parseSshPublicKey,
  sshFingerprint,
  newSshKeyPair,
} from '../../services/core/identity/ssh-keys.js';

// Public keys made with ssh-keygen 9 (public halves only; the private halves were thrown away).
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICwpm4FYWCmJKwg3lRRZWXpdvHFXRrXbE2f//N+VHS82 c-ed25519';
const ED25519_FP = 'SHA256:o/D2KsE2CK24/2bBnS2jnIzE8nBxKR/XHpy8VTAOEQE';
const RSA2048 =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCqHEt9C0mgp3s6J0AGgnVTuypfS/2j97dTwutGTEPvPtw1xtlfCvKq6iRatHhG8XkCZ03TFQfUaDV1RQkDflDxxSA9KO0b/GYitBcHhBfoKAXll25lZ0VnaCn4jLwBul4dSbxl5htj0nwxPVYSgfug4pah+Vt9Gu66vksG5WCT3syezY3V/WayElUVD1Dkf9UxcwzWlq5d4Y3LWl8ZNQR++c49cfaN21juVLCFRMXoTt/mPYLfrl112DIEuC7KAN/y3LI5M5XnYHG89l6XY8Q9NjFy2hyPdhwlzCbznrz0RwjXg6LllSCb/+S3F3Dc2PuIuyuoj+/TSNG++43JNPf5 c-rsab2048';
const RSA2048_FP = 'SHA256:5hweAKE2CFIRTv59gp3kZAJIYWjHDKxej2UQUAQNijQ';
const ECDSA256 =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIMw8qKoqv479XnmTYRE4odNlBsWMV/PG+4hOKPPNsPc6CBR75ARXXMaGI6y2wAEXEjqfqsk/Nf7zMmjGh2vgUU= c-ecdsab256';
const ECDSA256_FP = 'SHA256:6SCBc4+T5uod6A0UyQEAF/yOkby9z/Ybq26dhhrwIOA';
const ECDSA384 =
  'ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBAvqNViRfHxSTkrlImEeHH8Ctd0mGQ6j+JlgMl7GVgqIQ2LG7bxFvQZrOP5LVgU7KyCdeDnThnf4ipSOKoa2yQQwszbBWjPu3oN8I4Ad9lrqBM+J/2W87/Gmkn3oFsfknQ== c-ecdsab384';
const ECDSA521 =
  'ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAEEsSixrGK/VRJw70d2s3715pWDdlXbS0NPQ46yCj7cU2Yb4delhNdkNyewkJzxgWyGGjLMncMn2DhLfD2dFK6BhgDoN+WNk6rsx2gapgHQ2Kyy0kwfDbVwRVywfQ6xDRghdNTieC/qbGT/U2m6xX0DgpPflT+E2GLWBXyBVqyUqPXIfw== c-ecdsab521';
const RSA1024 =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCZ0s5BF19Ex6TGpiGZxq9JlI5g31jWUJRO3R3NEjV2SRk/d1Fcpp2/niPGZwHZqFeCtyWLE4At5w+VSmvP0HpVDKV1ikmSZ0LqLfvuorSb/OIILAoUvfOUnke6ANGQ90c3pm0I7QIz0+Wtgho3zs9ToUqdXhScEv+f5G0pRlvaRw== c-rsab1024';
const DSA =
  'ssh-dss AAAAB3NzaC1kc3MAAACBALXGKbIlRbSuEA2nZWKy0LgseG39bO0EhbZGJDIk8ajN7iBQltb7RZGVi6VRLc9C8JzMACIZGtjphFHH+kBbeSwTf8EPGhRJRYHB1xKlcn/Y9UPmtSfqD+HV42O5sojt3oGMn4o9KDxdPAyM+pF9zgtDSnY4RhnZAw2imj+TWuofAAAAFQDV7aXjh74EfF0fgLainq7FDTOmbwAAAIA1G1QE/hMPepZik31LOEyZAs2L/x0wqNWjgy6LhgSstuOepJvbrrKxqyO3HbP8AG1rdldM+Z2agnrNBRulnwGVH6/OsKuyoJK3Z7WZuuhtMuJg0P37hJZ3637smCmaAMZtGJvIurT/mXZ5ZMmdKz1THd4HI4kgIC1dWKTVj/uRPQAAAIAU1a3XDD9sEkL/kvPBVHPxbQwEZFiPMvWUnga8Va29O42pKD4LXxGNfkKtsokfeUcHG5HbZsjSppHj8v7F+HB2G10eDbs2Ur0ZFVG2CSLYwjT5p68wrseVbki9hXuB8+7ubHjUVZVYphYAK4c4Iq2ZbAZCoWuqmuDSjgGtNc9Syg== c-dsa';

function refusal(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected a refusal');
}

describe('parseSshPublicKey', () => {
  it('accepts ed25519, ecdsa 256/384 and rsa 2048 with ssh-keygen fingerprints, keeping the comment', () => {
    const ed = parseSshPublicKey(ED25519, 'k');
    expect(ed).toMatchObject({ type: 'ssh-ed25519', bits: 256, fingerprint: ED25519_FP, comment: 'c-ed25519', line: ED25519 });
    expect(parseSshPublicKey(RSA2048, 'k')).toMatchObject({ type: 'ssh-rsa', bits: 2048, fingerprint: RSA2048_FP });
    expect(parseSshPublicKey(ECDSA256, 'k')).toMatchObject({ type: 'ecdsa-sha2-nistp256', bits: 256, fingerprint: ECDSA256_FP });
    expect(parseSshPublicKey(ECDSA384, 'k')).toMatchObject({ type: 'ecdsa-sha2-nistp384', bits: 384 });
    expect(sshFingerprint(ed.blob)).toBe(ED25519_FP);
    expect(sshFingerprint(ed.blob)).not.toMatch(/=/);
  });

  it('normalises spacing, keeps a comment with spaces, and accepts a key without comment', () => {
    const [type, b64] = ED25519.split(' ');
    expect(parseSshPublicKey(`  ${type}\t${b64}   alice at  lab `, 'k').line).toBe(`${type} ${b64} alice at lab`);
    expect(parseSshPublicKey(`${type} ${b64}`, 'k')).toMatchObject({ line: `${type} ${b64}`, comment: '' });
  });

  it('accepts a key made by ssh2 itself', () => {
    const pair = newSshKeyPair({ comment: 'gen' });
    expect(parseSshPublicKey(pair.public, 'k').type).toBe('ssh-ed25519');
  });

  it('refuses RSA 1024, DSA and nistp521 saying what is accepted', () => {
    const rsa = refusal(() => parseSshPublicKey(RSA1024, 'users[0].ssh_keys[1]'));
    expect(rsa.message).toMatch(/^users\[0\]\.ssh_keys\[1\]: the ssh-rsa key has 1024 bits, fewer than 2048/);
    expect(rsa.message).toMatch(/ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384 or ssh-rsa of 2048 bits/);
    expect(rsa.details.field).toBe('users[0].ssh_keys[1]');
    expect(refusal(() => parseSshPublicKey(DSA, 'k')).message).toMatch(/DSA \(ssh-dss\) keys are not accepted/);
    expect(refusal(() => parseSshPublicKey(ECDSA521, 'k')).message).toMatch(/nistp521 keys are not accepted/);
  });

  it('refuses garbage, empty, options, private keys, a type/blob mismatch and trailing bytes, never echoing the key', () => {
    const [, b64, comment] = ED25519.split(' ');
    const rsaB64 = RSA2048.split(' ')[1]!;
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['hello world', /not accepted/],
      ['ssh-ed25519 !!!notbase64', /not a single OpenSSH public key line/],
      ['ssh-ed25519 AAAAAAAA', /does not parse|malformed/],
      [`no-pty ${ED25519}`, /not a single OpenSSH public key line/],
      [`ssh-rsa ${b64} ${comment}`, /does not parse|malformed/],
      [`ssh-ed25519 ${rsaB64}`, /does not parse|malformed/],
      [
        `ssh-ed25519 ${Buffer.concat([Buffer.from(b64!, 'base64'), Buffer.from([1, 2, 3])]).toString('base64')}`,
        /malformed|does not parse/,
      ],
      [`${ED25519}\nssh-ed25519 ${b64}`, /line break/],
      [newSshKeyPair().private, /line break|not a single/],
    ];
    for (const [line, why] of cases) {
      const err = refusal(() => parseSshPublicKey(line, 'key'));
      expect(err.message).toMatch(why);
      expect(err.message).not.toContain(b64!.slice(10, 40));
    }
  });

  it('refuses an oversized line before parsing it', () => {
    const err = refusal(() => parseSshPublicKey(`${ED25519} ${'x'.repeat(9000)}`, 'k'));
    expect(err.message).toMatch(/longer than 8192 bytes/);
  });
});

describe('checkSliceUsers', () => {
  it('sorts users by URN, dedupes a key given twice, keeps comments', () => {
    const users = checkSliceUsers(
      [
        { urn: 'urn:fedlab:lab.test:user:zed', sshKeys: [ED25519, ED25519.replace('c-ed25519', 'other comment'), RSA2048] },
        { urn: 'urn:fedlab:lab.test:sp:portal', sshKeys: [] },
      ],
      'users',
    );
    expect(users.map((u) => u.urn)).toEqual(['urn:fedlab:lab.test:sp:portal', 'urn:fedlab:lab.test:user:zed']);
    expect(users[1]!.sshKeys).toEqual([ED25519, RSA2048]);
  });

  it('names the user and key index of a bad key', () => {
    const err = refusal(() =>
      checkSliceUsers(
        [
          { urn: 'urn:fedlab:lab.test:user:ann', sshKeys: [ED25519] },
          { urn: 'urn:fedlab:lab.test:user:bob', sshKeys: [ED25519, DSA] },
        ],
        'users',
      ),
    );
    expect(err.message).toMatch(/^users\[1\]\.ssh_keys\[1\] \(user urn:fedlab:lab\.test:user:bob\): DSA/);
  });

  it('refuses a URN that is not a user or provider, a user listed twice, too many keys and too many users', () => {
    expect(refusal(() => checkSliceUsers([{ urn: 'urn:fedlab:lab.test:node:n1', sshKeys: [] }], 'users')).message).toMatch(
      /users\[0\]\.urn must name a user/,
    );
    expect(refusal(() => checkSliceUsers([{ urn: 'bob', sshKeys: [] }], 'users')).message).toMatch(/users\[0\]\.urn: malformed URN/);
    const twice = [
      { urn: 'urn:fedlab:lab.test:user:ann', sshKeys: [] },
      { urn: 'urn:fedlab:lab.test:user:ann', sshKeys: [ED25519] },
    ];
    expect(refusal(() => checkSliceUsers(twice, 'users')).message).toMatch(/listed twice/);
    const manyKeys = Array.from({ length: MAX_KEYS_PER_USER + 1 }, () => ED25519);
    expect(refusal(() => checkSliceUsers([{ urn: 'urn:fedlab:lab.test:user:ann', sshKeys: manyKeys }], 'users')).message).toMatch(
      /has 17 keys, at most 16/,
    );
    const many = Array.from({ length: MAX_SLICE_USERS + 1 }, (_, i) => ({ urn: `urn:fedlab:lab.test:user:u${i}`, sshKeys: [] }));
    expect(refusal(() => checkSliceUsers(many, 'users')).message).toMatch(/65 users, at most 64/);
    expect(checkSliceUsers(undefined, 'users')).toEqual([]);
  });
});

describe('checkSshEndpoint', () => {
  it('accepts a matching endpoint and refuses a wrong fingerprint or address', () => {
    const ok = checkSshEndpoint({ address: 'node1.lab.test:2222', hostKey: ED25519, hostKeyFingerprint: ED25519_FP }, 'ssh');
    expect(ok.hostKey).toBe(ED25519.split(' ').slice(0, 2).join(' '));
    expect(checkSshEndpoint({ address: '[::1]:22', hostKey: ED25519, hostKeyFingerprint: ED25519_FP }, 'ssh').address).toBe('[::1]:22');
    expect(refusal(() => checkSshEndpoint({ address: 'n:22', hostKey: ED25519, hostKeyFingerprint: RSA2048_FP }, 'ssh')).message).toMatch(
      /host_key_fingerprint does not match/,
    );
    for (const address of ['n', 'n:0', 'n:70000', 'a b:22', '']) {
      expect(refusal(() => checkSshEndpoint({ address, hostKey: ED25519, hostKeyFingerprint: ED25519_FP }, 'ssh')).message).toMatch(
        /address must be host:port/,
      );
    }
  });
});
