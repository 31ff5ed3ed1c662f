/**
 * Fedlab names: `urn:fedlab:<domain>:<kind>:<name>` (docs/design.md §4) and the target
 * patterns credentials use. URNs are always compared by parsed components,
 * never by string prefix, so `plc.prince` never matches `plc.princeton`.
 */
import { InvalidArgumentError } from '../errors.js';

/** The closed set of principal and object kinds. */
export const URN_KINDS = ['authority', 'node', 'owner', 'sp', 'user', 'slice', 'sliver'] as const;
export type UrnKind = (typeof URN_KINDS)[number];

/** A parsed, valid URN. */
export interface Urn {
  readonly domain: string;
  readonly kind: UrnKind;
  readonly name: string;
}

/** A parsed target pattern: an exact URN, every object of one kind in a domain, or a whole domain. */
export interface Target {
  readonly domain: string;
  readonly kind: UrnKind | '*';
  /** `*` when `kind` is `*` or the pattern covers every name of the kind. */
  readonly name: string;
}

const PREFIX = 'urn:fedlab:';
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const KIND_SET: ReadonlySet<string> = new Set(URN_KINDS);

/** True when `d` is a lower-case DNS name (1 to 253 characters, labels of 1 to 63). */
export function isValidDomain(d: string): boolean {
  if (d.length === 0 || d.length > 253) return false;
  return d.split('.').every((label) => LABEL.test(label));
}

/** True when `n` is a valid object name: `[a-z0-9][a-z0-9._-]{0,62}`. */
export function isValidName(n: string): boolean {
  return NAME.test(n);
}

export function isUrnKind(k: string): k is UrnKind {
  return KIND_SET.has(k);
}

function fail(input: string, why: string): never {
  // Echo at most a bounded prefix of what was given: never reflect arbitrary amounts of input.
  const shown = input.length > 120 ? `${input.slice(0, 120)}…` : input;
  throw new InvalidArgumentError(
    `malformed URN ${JSON.stringify(shown)}: ${why}; expected urn:fedlab:<domain>:<kind>:<name>, e.g. urn:fedlab:plc.test:node:n1`,
    { rule: 'urn' },
  );
}

/** Parses and validates a URN; throws {@link InvalidArgumentError} naming what is wrong. */
export function parseUrn(input: string): Urn {
  if (typeof input !== 'string' || !input.startsWith(PREFIX)) fail(String(input), 'it must start with "urn:fedlab:"');
  const parts = input.slice(PREFIX.length).split(':');
  if (parts.length !== 3) fail(input, `it must have exactly three parts after "urn:fedlab:", found ${parts.length}`);
  const [domain, kind, name] = parts as [string, string, string];
  if (!isValidDomain(domain)) fail(input, `domain ${JSON.stringify(domain)} is not a lower-case DNS name`);
  if (!isUrnKind(kind)) fail(input, `kind ${JSON.stringify(kind)} is not one of ${URN_KINDS.join(', ')}`);
  if (!isValidName(name)) fail(input, `name ${JSON.stringify(name)} must match [a-z0-9][a-z0-9._-]{0,62}`);
  return { domain, kind, name };
}

/** True when `input` is a valid URN. */
export function isUrn(input: string): boolean {
  try {
    parseUrn(input);
    return true;
  } catch {
    return false;
  }
}

/** Formats URN components, validating them. */
export function formatUrn(urn: Urn): string {
  const s = `${PREFIX}${urn.domain}:${urn.kind}:${urn.name}`;
  parseUrn(s);
  return s;
}

/** Builds and validates a URN from its components. */
export function makeUrn(domain: string, kind: UrnKind, name: string): string {
  return formatUrn({ domain, kind, name });
}

/** Component-wise equality of two URNs (strings are parsed first). */
export function urnEquals(a: string | Urn, b: string | Urn): boolean {
  const x = typeof a === 'string' ? parseUrn(a) : a;
  const y = typeof b === 'string' ? parseUrn(b) : b;
  return x.domain === y.domain && x.kind === y.kind && x.name === y.name;
}

/** Parses a target pattern: an exact URN, `urn:fedlab:<domain>:<kind>:*` or `urn:fedlab:<domain>:*`. */
export function parseTarget(input: string): Target {
  if (typeof input !== 'string' || !input.startsWith(PREFIX)) fail(String(input), 'a target must start with "urn:fedlab:"');
  const parts = input.slice(PREFIX.length).split(':');
  const domain = parts[0] ?? '';
  if (!isValidDomain(domain)) fail(input, `domain ${JSON.stringify(domain)} is not a lower-case DNS name`);
  if (parts.length === 2 && parts[1] === '*') return { domain, kind: '*', name: '*' };
  if (parts.length === 3 && parts[2] === '*') {
    const kind = parts[1] ?? '';
    if (!isUrnKind(kind)) fail(input, `kind ${JSON.stringify(kind)} is not one of ${URN_KINDS.join(', ')}`);
    return { domain, kind, name: '*' };
  }
  const urn = parseUrn(input);
  return { domain: urn.domain, kind: urn.kind, name: urn.name };
}

/** Formats a parsed target back to its canonical string. */
export function formatTarget(t: Target): string {
  if (t.kind === '*') return `${PREFIX}${t.domain}:*`;
  return `${PREFIX}${t.domain}:${t.kind}:${t.name}`;
}

/** True when target pattern `pattern` covers the object URN `urn`. */
export function targetCovers(pattern: string | Target, urn: string | Urn): boolean {
  const p = typeof pattern === 'string' ? parseTarget(pattern) : pattern;
  const u = typeof urn === 'string' ? parseUrn(urn) : urn;
  if (p.domain !== u.domain) return false;
  if (p.kind === '*') return true;
  if (p.kind !== u.kind) return false;
  return p.name === '*' || p.name === u.name;
}

/** True when every object `child` covers is also covered by `parent` (attenuation of targets). */
export function targetContains(parent: string | Target, child: string | Target): boolean {
  const p = typeof parent === 'string' ? parseTarget(parent) : parent;
  const c = typeof child === 'string' ? parseTarget(child) : child;
  if (p.domain !== c.domain) return false;
  if (p.kind === '*') return true;
  if (c.kind === '*' || c.kind !== p.kind) return false;
  if (p.name === '*') return true;
  return c.name !== '*' && c.name === p.name;
}
