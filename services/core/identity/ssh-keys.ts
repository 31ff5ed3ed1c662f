/**
 * SSH public keys of a slice's users and of nodes' SSH endpoints: the one place that decides which
 * keys Fedlab accepts. A key is an OpenSSH authorized_keys line without options
 * (`<type> <base64> [comment]`); accepted are ssh-ed25519, ecdsa-sha2-nistp256/384 and ssh-rsa of
 * 2048 bits or more. Everything else is refused with an InvalidArgumentError naming the field and
 * saying what is accepted. Parsing is `ssh2`'s `utils.parseKey`; the bit size and the fingerprint
 * are read from the key's wire blob here.
 */
import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import { InvalidArgumentError } from '../errors.js';
import { parseUrn } from './urn.js';

// ssh2 is CommonJS and its `utils` is not a detectable named export.
const ssh2Utils = ssh2.utils;

/** The key types Fedlab accepts. */
export const ACCEPTED_SSH_KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ssh-rsa'] as const;
export type SshKeyType = (typeof ACCEPTED_SSH_KEY_TYPES)[number];

/** Smallest RSA modulus accepted, in bits. */
export const MIN_RSA_BITS = 2048;
/** Longest key line accepted, in bytes (UTF-8). */
export const MAX_SSH_KEY_LINE = 8 * 1024;
/** Most keys one user may have. */
export const MAX_KEYS_PER_USER = 16;
/** Most users one slice may have. */
export const MAX_SLICE_USERS = 64;

/** What a slice user is on the wire (the generated `SliceUser` has this shape). */
export interface SliceUserInput {
  readonly urn: string;
  readonly sshKeys: readonly string[];
}

/** A normalised slice user: URN checked, keys checked, normalised and deduplicated. */
export interface SliceUserRecord {
  urn: string;
  sshKeys: string[];
}

/** A checked SSH public key. */
export interface SshPublicKey {
  readonly type: SshKeyType;
  /** Key size in bits (RSA modulus, ECDSA curve, 256 for Ed25519). */
  readonly bits: number;
  /** `SHA256:<base64, unpadded>` of the blob, as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
  /** Normalised `type base64 [comment]`. */
  readonly line: string;
  /** The key in SSH wire format. */
  readonly blob: Buffer;
  /** The comment, trimmed ('' when none). */
  readonly comment: string;
}

/** What the accepted keys are, for messages. */
export const ACCEPTED_SSH_KEYS_TEXT = `an OpenSSH public key line "<type> <base64> [comment]" of type ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384 or ssh-rsa of ${MIN_RSA_BITS} bits or more`;

// Control characters but tab (a newline would smuggle a second authorized_keys line).
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** `SHA256:` + unpadded base64 of sha256(blob), the fingerprint `ssh-keygen -l` prints. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function refuse(field: string, why: string): never {
  throw new InvalidArgumentError(`${field}: ${why}; expected ${ACCEPTED_SSH_KEYS_TEXT}`, { field, rule: 'ssh_key' });
}

/** Reads SSH wire strings (uint32 length + bytes) from a blob; undefined when it runs short. */
function readStrings(blob: Buffer, count: number): Buffer[] | undefined {
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    if (pos + 4 > blob.length) return undefined;
    const len = blob.readUInt32BE(pos);
    pos += 4;
    if (pos + len > blob.length) return undefined;
    out.push(blob.subarray(pos, pos + len));
    pos += len;
  }
  return out;
}

/** Bit length of an SSH mpint (big-endian, may carry a leading zero byte). */
function mpintBits(n: Buffer): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]!));
}

function keyBits(type: SshKeyType, blob: Buffer): number | undefined {
  switch (type) {
    case 'ssh-rsa': {
      const parts = readStrings(blob, 3); // type, e, n
      return parts === undefined ? undefined : mpintBits(parts[2]!);
    }
    case 'ecdsa-sha2-nistp256':
      return 256;
    case 'ecdsa-sha2-nistp384':
      return 384;
    case 'ssh-ed25519':
      return 256;
  }
}

function isAccepted(type: string): type is SshKeyType {
  return (ACCEPTED_SSH_KEY_TYPES as readonly string[]).includes(type);
}

/**
 * Parses and checks one SSH public key line. `field` names it in errors (e.g.
 * `users[1].ssh_keys[0]`). Throws InvalidArgumentError saying what is wrong and what is accepted;
 * the message never echoes the key.
 */
export function parseSshPublicKey(line: string, field: string): SshPublicKey {
  if (typeof line !== 'string' || line.trim() === '') refuse(field, 'the key is empty');
  if (Buffer.byteLength(line, 'utf8') > MAX_SSH_KEY_LINE) refuse(field, `the key line is longer than ${MAX_SSH_KEY_LINE} bytes`);
  const text = line.trim();
  if (CONTROL.test(text)) refuse(field, 'the key line contains a line break or another control character');
  const words = text.split(/[ \t]+/);
  const type = words[0] ?? '';
  if (words.length < 2 || !/^[A-Za-z0-9+/]+={0,2}$/.test(words[1] ?? '')) {
    refuse(field, 'the key is not a single OpenSSH public key line (authorized_keys options and other formats are not accepted)');
  }
  if (type === 'ssh-dss') refuse(field, 'DSA (ssh-dss) keys are not accepted');
  if (type === 'ecdsa-sha2-nistp521') refuse(field, 'ecdsa-sha2-nistp521 keys are not accepted');
  if (!isAccepted(type)) refuse(field, `key type ${JSON.stringify(type.slice(0, 64))} is not accepted`);
  const parsed = ssh2Utils.parseKey(`${type} ${words[1]}`);
  if (parsed instanceof Error) refuse(field, `the ${type} key does not parse (${parsed.message})`);
  if (parsed.isPrivateKey()) refuse(field, 'that is a private key; send the public key (the .pub file)');
  const blob = Buffer.from(words[1]!, 'base64');
  // The blob must say the same type as the line and be exactly the key (no trailing bytes).
  const blobType = readStrings(blob, 1)?.[0]?.toString('latin1');
  if (blobType !== type || !parsed.getPublicSSH().equals(blob)) refuse(field, `the ${type} key data is malformed`);
  const bits = keyBits(type, blob);
  if (bits === undefined) refuse(field, `the ${type} key data is malformed`);
  if (type === 'ssh-rsa' && bits < MIN_RSA_BITS) refuse(field, `the ssh-rsa key has ${bits} bits, fewer than ${MIN_RSA_BITS}`);
  const comment = words.slice(2).join(' ');
  const b64 = blob.toString('base64');
  return {
    type,
    bits,
    fingerprint: sshFingerprint(blob),
    line: comment === '' ? `${type} ${b64}` : `${type} ${b64} ${comment}`,
    blob,
    comment,
  };
}

/** Checks a user URN: a user (`urn:fedlab:<domain>:user:<name>`) or a provider (`...:sp:<name>`). */
export function checkSliceUserUrn(urn: string, field: string): string {
  let kind: string;
  try {
    kind = parseUrn(urn).kind;
  } catch (err) {
    throw new InvalidArgumentError(`${field}: ${(err as Error).message}`, { field });
  }
  if (kind !== 'user' && kind !== 'sp') {
    throw new InvalidArgumentError(
      `${field} must name a user (urn:fedlab:<domain>:user:<name>) or a provider (urn:fedlab:<domain>:sp:<name>), not a ${kind}`,
      {
        field,
      },
    );
  }
  return urn;
}

/** Checks one user's keys; returns them normalised, a key given twice (same blob) kept once. */
export function checkSliceUser(user: SliceUserInput, field: string): SliceUserRecord {
  const urn = checkSliceUserUrn(user.urn, `${field}.urn`);
  const keys = user.sshKeys ?? [];
  if (keys.length > MAX_KEYS_PER_USER) {
    throw new InvalidArgumentError(`${field}.ssh_keys: user ${urn} has ${keys.length} keys, at most ${MAX_KEYS_PER_USER} are accepted`, {
      field: `${field}.ssh_keys`,
    });
  }
  const seen = new Set<string>();
  const sshKeys: string[] = [];
  keys.forEach((line, j) => {
    const key = parseSshPublicKey(line, `${field}.ssh_keys[${j}] (user ${urn})`);
    const id = key.blob.toString('base64');
    if (seen.has(id)) return;
    seen.add(id);
    sshKeys.push(key.line);
  });
  return { urn, sshKeys };
}

/**
 * Checks a slice's users (`field` is the request field, e.g. `users`): at most
 * {@link MAX_SLICE_USERS}, each URN once, each key accepted. Returns them normalised: keys
 * deduplicated, users sorted by URN.
 */
export function checkSliceUsers(users: readonly SliceUserInput[] | undefined, field: string): SliceUserRecord[] {
  const list = users ?? [];
  if (list.length > MAX_SLICE_USERS) {
    throw new InvalidArgumentError(`${field}: ${list.length} users, at most ${MAX_SLICE_USERS} are accepted per slice`, { field });
  }
  const byUrn = new Map<string, number>();
  const out = list.map((u, i) => {
    const checked = checkSliceUser(u, `${field}[${i}]`);
    const earlier = byUrn.get(checked.urn);
    if (earlier !== undefined) {
      throw new InvalidArgumentError(
        `${field}[${i}].urn: user ${checked.urn} is listed twice (also ${field}[${earlier}]); list each user once with all their keys`,
        {
          field: `${field}[${i}].urn`,
        },
      );
    }
    byUrn.set(checked.urn, i);
    return checked;
  });
  return out.sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));
}

/** A node's SSH endpoint as sent on the wire (the generated `SshEndpoint` has this shape). */
export interface SshEndpointInput {
  readonly address: string;
  readonly hostKey: string;
  readonly hostKeyFingerprint: string;
}

const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/;

/**
 * Checks a node's SSH endpoint: `address` is host:port, `host_key` is an accepted public key line
 * and `host_key_fingerprint` is that key's fingerprint. Returns it normalised (key line without
 * comment). Throws InvalidArgumentError naming what is wrong.
 */
export function checkSshEndpoint(endpoint: SshEndpointInput, field: string): SshEndpointInput {
  const m = HOST_PORT.exec(endpoint.address ?? '');
  const port = m === null ? 0 : Number(m[1]);
  if (m === null || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`${field}.address must be host:port (e.g. node1.example.org:2222)`, { field: `${field}.address` });
  }
  const key = parseSshPublicKey(endpoint.hostKey, `${field}.host_key`);
  if (endpoint.hostKeyFingerprint !== key.fingerprint) {
    throw new InvalidArgumentError(`${field}.host_key_fingerprint does not match host_key (its fingerprint is ${key.fingerprint})`, {
      field: `${field}.host_key_fingerprint`,
    });
  }
  return { address: endpoint.address, hostKey: `${key.type} ${key.blob.toString('base64')}`, hostKeyFingerprint: key.fingerprint };
}

/**
 * A new Ed25519 key pair in OpenSSH's formats (private key and public line) that parses back: ssh2
 * 1.17 drops a leading zero byte of the key about one time in 128, which leaves a pair nothing can
 * read, so such a pair is made again. Every Fedlab key pair for SSH comes from here.
 */
export function newSshKeyPair(options: { readonly comment?: string } = {}): { readonly private: string; readonly public: string } {
  for (let i = 0; i < 64; i++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', options.comment !== undefined ? { comment: options.comment } : {});
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error) && !(ssh2.utils.parseKey(pair.public) instanceof Error)) return pair;
  }
  throw new Error('could not make an Ed25519 key pair that parses back');
}
