// Shared fixtures of the credential tests (not a test file itself): principals with keys, a trust store,
// and a forger that signs any header and payload, so tests can build exactly the chain an attacker would.
import { createHash, sign, type KeyObject } from 'node:crypto';
import { expect } from 'vitest';
import {
  NO_REVOCATIONS,
  TrustStore,
  isCredentialError,
  thumbprintOf,
  toPublicJwk,
  verifyChain,
  type Grant,
  type PublicJwk,
  type RevocationLookup,
  type VerifyChainInput,
} from '../../services/core/credentials/index.js';
import type { TrustBundle } from '../../services/core/identity/trust-bundle.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

/** A principal: URN and key pair. */
export interface Principal {
  readonly urn: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly jwk: PublicJwk;
  readonly kid: string;
  readonly alg: 'ES256' | 'EdDSA';
}

/** Makes a principal with a fresh key. */
export function principal(urn: string, alg: 'p256' | 'ed25519' = 'p256'): Principal {
  const { privateKey, publicKey } = alg === 'p256' ? generateKeyPair('p256') : generateKeyPair('ed25519');
  const jwk = toPublicJwk(publicKey);
  return { urn, privateKey, publicKey, jwk, kid: thumbprintOf(jwk), alg: alg === 'p256' ? 'ES256' : 'EdDSA' };
}

/** The fixed clock of the tests (seconds and Date). */
export const T0 = 1_780_000_000;
export const NOW = new Date(T0 * 1000);

export const NODE_N1 = 'urn:fedlab:plc.test:node:n1';
export const ALL_NODES = 'urn:fedlab:plc.test:node:*';
export const SLIVER_PRIVS = ['sliver.create', 'sliver.delete', 'sliver.renew', 'sliver.control', 'node.read'];

/** A trust bundle object for tests (the TrustStore reads its domain, serial and authorities). */
export function fakeBundle(domain: string, authorities: readonly Principal[], serial = 1): TrustBundle {
  return {
    v: 1,
    domain,
    serial,
    issued_at: NOW.toISOString(),
    ca_certs: [],
    authorities: authorities.map((a) => ({ urn: a.urn, jwk: a.jwk as never, kid: a.kid })),
    revocation_version: 0,
  };
}

export function b64(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

/** Signs exactly the given header and payload (objects are JSON-encoded, strings used as they are). */
export function signCompact(header: object | string, payload: object | string, key: KeyObject, alg: 'ES256' | 'EdDSA' = 'ES256'): string {
  const h = b64(typeof header === 'string' ? header : JSON.stringify(header));
  const p = b64(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const input = `${h}.${p}`;
  const sig =
    alg === 'ES256' ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }) : sign(null, Buffer.from(input), key);
  return `${input}.${b64(sig)}`;
}

export function hashOf(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

let jtiCounter = 0;
/** A deterministic-looking but unique jti (22 base64url characters, canonical). */
export function testJti(): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(++jtiCounter, 12);
  b.writeUInt32BE(0xfed1ab, 0);
  return b.toString('base64url');
}

/** One link to forge: overrides set a claim/header member, `undefined` removes it. */
export interface LinkSpec {
  readonly iss: Principal;
  readonly sub: Principal;
  readonly claims?: Record<string, unknown>;
  readonly header?: Record<string, unknown>;
  /** Signs with this principal instead of `iss`. */
  readonly signer?: Principal;
  /** Replace the payload text entirely (after claims are built). */
  readonly payloadText?: (json: string) => string;
  readonly headerText?: (json: string) => string;
}

/** Default claims of link `index` (root dlg 6, dropping one per link; limits on the root only). */
export function defaultClaims(spec: LinkSpec, index: number, parent?: string): Record<string, unknown> {
  const c: Record<string, unknown> = {
    v: 1,
    jti: testJti(),
    iss: spec.iss.urn,
    sub: spec.sub.urn,
    cnf: { jwk: spec.sub.jwk },
    tgt: [ALL_NODES],
    priv: [...SLIVER_PRIVS],
    dlg: 6 - index,
    lim: index === 0 ? { slivers: 100, cpu_millis: 4000, mem_mb: 8192, disk_mb: 20480, ttl_s: 4838400 } : {},
    iat: T0 - 3600,
    nbf: T0 - 3600,
    exp: T0 + 86400,
  };
  if (parent !== undefined) c.prf = hashOf(parent);
  return c;
}

function apply(base: Record<string, unknown>, overrides: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(overrides ?? {})) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** Forges link `index` of a chain (the parent is the previous link's token). */
export function forgeLink(spec: LinkSpec, index: number, parent?: string): string {
  const signer = spec.signer ?? spec.iss;
  const header = apply({ alg: signer.alg, typ: 'fedlab-cred+jwt', kid: signer.kid }, spec.header);
  const claims = apply(defaultClaims(spec, index, parent), spec.claims);
  const h = spec.headerText ? spec.headerText(JSON.stringify(header)) : header;
  const p = spec.payloadText ? spec.payloadText(JSON.stringify(claims)) : claims;
  return signCompact(h, p, signer.privateKey, signer.alg);
}

/** Forges a whole chain, each link's prf the previous link's hash unless overridden. */
export function forgeChain(specs: readonly LinkSpec[]): string[] {
  const out: string[] = [];
  specs.forEach((s, i) => out.push(forgeLink(s, i, out[i - 1])));
  return out;
}

/** The standard cast: MA and SA of plc.test, a provider, two users, and another domain's MA. */
export function cast() {
  const ma = principal('urn:fedlab:plc.test:authority:ma');
  const sa = principal('urn:fedlab:plc.test:authority:sa', 'ed25519');
  const sp = principal('urn:fedlab:plc.test:sp:acme');
  const alice = principal('urn:fedlab:plc.test:user:alice');
  const bob = principal('urn:fedlab:plc.test:user:bob', 'ed25519');
  const otherMa = principal('urn:fedlab:emulab.test:authority:ma');
  const trust = new TrustStore();
  trust.addBundle(fakeBundle('plc.test', [ma, sa]));
  trust.addBundle(fakeBundle('emulab.test', [otherMa]));
  return { ma, sa, sp, alice, bob, otherMa, trust };
}

export type Cast = ReturnType<typeof cast>;

/** MA → SA → SP → alice, the four links most tests start from. */
export function standardSpecs(c: Cast): LinkSpec[] {
  return [
    { iss: c.ma, sub: c.sa },
    { iss: c.sa, sub: c.sp },
    { iss: c.sp, sub: c.alice },
  ];
}

/** Verifies `chain` as alice calling sliver.create on node n1 at NOW, without the process-wide cache. */
export function verifyAs(c: Cast, chain: readonly string[], over: Partial<VerifyChainInput> = {}): Grant {
  const leafHolder = c.alice;
  return verifyChain({
    chain,
    trust: c.trust,
    holder: { urn: leafHolder.urn, thumbprint: leafHolder.kid },
    privilege: 'sliver.create',
    object: NODE_N1,
    now: NOW,
    revocations: NO_REVOCATIONS as RevocationLookup,
    cache: null,
    ...over,
  });
}

/** Asserts that `fn` throws a credential error with exactly this link, rule and kind. */
export function expectRule(
  fn: () => unknown,
  link: number,
  rule: string,
  kind: 'unauthenticated' | 'permission_denied' = 'unauthenticated',
): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a credential error').toBeDefined();
  if (!isCredentialError(thrown)) throw thrown;
  expect({ link: thrown.link, rule: thrown.rule, kind: thrown.kind }).toEqual({ link, rule, kind });
  expect(thrown.details).toMatchObject({ link, rule });
}
