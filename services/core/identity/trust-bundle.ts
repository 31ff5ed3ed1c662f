/**
 * A domain's trust bundle (docs/design.md §4): its CA certificates, the public keys of
 * its authorities, and its revocation list's version. Bundles of different
 * domains are never merged; a key in a bundle is trusted only for objects of
 * that bundle's domain. The fingerprint is SHA-256 over the canonical JSON and
 * is what admins pin out of band when peering.
 */
import { createHash } from 'node:crypto';
import type { JWK } from 'jose';
import { canonicalJson } from '../canonical-json.js';
import { InvalidArgumentError } from '../errors.js';
import { jwkThumbprint, publicJwkMembers } from './keys.js';
import { isValidDomain, parseUrn } from './urn.js';
import { parseCertificate, splitPemCertificates } from './certificate.js';

/** One authority (MA, SA, or another principal the domain vouches for) in a bundle. */
export interface BundleAuthority {
  /** The authority's URN; its domain is the bundle's domain. */
  readonly urn: string;
  /** Public JWK (public members only). */
  readonly jwk: JWK;
  /** RFC 7638 thumbprint of `jwk`; the `kid` of credentials it signs. */
  readonly kid: string;
}

/** Format version 1 of a trust bundle, as served by `Federation.GetBundle`. */
export interface TrustBundle {
  readonly v: 1;
  readonly domain: string;
  /** Increases whenever the domain publishes a changed bundle. */
  readonly serial: number;
  /** RFC 3339 time the bundle was made. */
  readonly issued_at: string;
  /** The domain's CA certificates, PEM. */
  readonly ca_certs: readonly string[];
  readonly authorities: readonly BundleAuthority[];
  /** Version of the domain's revocation list when the bundle was made. */
  readonly revocation_version: number;
}

const BUNDLE_KEYS = new Set(['v', 'domain', 'serial', 'issued_at', 'ca_certs', 'authorities', 'revocation_version']);
const AUTHORITY_KEYS = new Set(['urn', 'jwk', 'kid']);

function bad(why: string): never {
  throw new InvalidArgumentError(`invalid trust bundle: ${why}`);
}

function checkKeys(obj: Record<string, unknown>, allowed: Set<string>, where: string): void {
  for (const k of Object.keys(obj)) if (!allowed.has(k)) bad(`unknown field ${JSON.stringify(k)} in ${where}`);
  for (const k of allowed) if (!(k in obj)) bad(`missing field ${JSON.stringify(k)} in ${where}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and strictly validates a bundle (from JSON text or a parsed value); checks every kid against its key. */
export async function parseTrustBundle(input: string | unknown): Promise<TrustBundle> {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      bad('not JSON');
    }
  }
  if (!isRecord(value)) bad('not a JSON object');
  checkKeys(value, BUNDLE_KEYS, 'the bundle');
  if (value.v !== 1) bad(`unsupported version ${JSON.stringify(value.v)} (this Fedlab reads version 1)`);
  if (typeof value.domain !== 'string' || !isValidDomain(value.domain)) bad('domain must be a lower-case DNS name');
  const domain = value.domain;
  if (!Number.isSafeInteger(value.serial) || (value.serial as number) < 0) bad('serial must be a non-negative integer');
  if (typeof value.issued_at !== 'string' || Number.isNaN(Date.parse(value.issued_at))) bad('issued_at must be an RFC 3339 time');
  if (!Number.isSafeInteger(value.revocation_version) || (value.revocation_version as number) < 0) {
    bad('revocation_version must be a non-negative integer');
  }
  if (!Array.isArray(value.ca_certs) || value.ca_certs.length === 0) bad('ca_certs must list at least one PEM certificate');
  const caCerts = value.ca_certs.map((pem, i) => {
    if (typeof pem !== 'string' || splitPemCertificates(pem).length !== 1) bad(`ca_certs[${i}] must be one PEM certificate`);
    const cert = parseCertificate(pem, `ca_certs[${i}]`);
    if (!cert.ca) bad(`ca_certs[${i}] is not a CA certificate`);
    return pem;
  });
  if (!Array.isArray(value.authorities)) bad('authorities must be a list');
  const authorities: BundleAuthority[] = [];
  const seen = new Set<string>();
  for (const [i, a] of value.authorities.entries()) {
    if (!isRecord(a)) bad(`authorities[${i}] must be an object`);
    checkKeys(a, AUTHORITY_KEYS, `authorities[${i}]`);
    if (typeof a.urn !== 'string') bad(`authorities[${i}].urn must be a string`);
    let urnDomain: string;
    try {
      urnDomain = parseUrn(a.urn).domain;
    } catch (err) {
      bad(`authorities[${i}].urn: ${(err as Error).message}`);
    }
    if (urnDomain !== domain) bad(`authorities[${i}] ${a.urn} is not in the bundle's domain ${domain}`);
    if (!isRecord(a.jwk)) bad(`authorities[${i}].jwk must be a JWK object`);
    let jwk: JWK;
    try {
      jwk = publicJwkMembers(a.jwk as JWK);
    } catch (err) {
      bad(`authorities[${i}].jwk: ${(err as Error).message}`);
    }
    if (Object.keys(a.jwk).some((k) => !(k in jwk))) bad(`authorities[${i}].jwk must hold public members only`);
    const kid = jwkThumbprint(jwk);
    if (a.kid !== kid) bad(`authorities[${i}].kid is not the RFC 7638 thumbprint of its jwk`);
    if (seen.has(kid)) bad(`authorities[${i}] repeats key ${kid}`);
    seen.add(kid);
    authorities.push({ urn: a.urn, jwk, kid });
  }
  return {
    v: 1,
    domain,
    serial: value.serial as number,
    issued_at: value.issued_at,
    ca_certs: caCerts,
    authorities,
    revocation_version: value.revocation_version as number,
  };
}

/** The canonical bytes of a bundle: what is hashed and what is served. */
export function serializeTrustBundle(bundle: TrustBundle): string {
  return canonicalJson(bundle);
}

/** `sha256:<hex>` over the bundle's canonical JSON: the value admins pin. */
export function bundleFingerprint(bundle: TrustBundle): string {
  return `sha256:${createHash('sha256').update(serializeTrustBundle(bundle)).digest('hex')}`;
}

/** Normalises a fingerprint given by a user (accepts `sha256:` or `SHA256:` prefix, upper or lower hex, colons). */
export function normalizeFingerprint(input: string): string {
  const hex = input
    .trim()
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new InvalidArgumentError('a fingerprint is 64 hex digits, optionally prefixed sha256: (see `fedlab certs inspect BUNDLE`)');
  }
  return `sha256:${hex}`;
}
