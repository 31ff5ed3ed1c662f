/**
 * A CreateSliver request checked before any credential work and before
 * anything is written: URNs, the slice authority's key, the client id, the
 * allocation state, resources (zero fields take the node's defaults) and the
 * asked expiry; and the fingerprint a retry of the same request must match.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import { INCARNATION } from '../core/credentials/index.js';
import { InvalidArgumentError } from '../core/errors.js';
import { publicJwkMembers } from '../core/identity/keys.js';
import { checkSliceUsers, type SliceUserInput, type SliceUserRecord } from '../core/identity/ssh-keys.js';
import { requestId, urnField } from '../core/validate.js';
import { AllocationState, type ResourceSpec, type SliverInterface } from '../generated/fedlab/v1/common.js';
import { ABSURD } from './config.js';
import type { SliverResources } from './drivers/driver.js';
import type { Allocation } from './records.js';
import { imageName, parseImageName } from './runtime/images.js';

/** Smallest amounts a sliver may ask for: below them nothing useful runs. */
export const MINIMUM = { cpuMillis: 10, memMb: 16, diskMb: 1, pids: 8 } as const;

/** Defaults for zero fields and unset expiries. */
export interface NodeDefaults {
  readonly cpuMillis: number;
  readonly memMb: number;
  readonly diskMb: number;
  readonly pids: number;
  readonly lifetimeS: number;
  readonly holdS: number;
}

/** A create request in domain terms (the wire's CreateSliverRequest). */
export interface CreateSliverInput {
  readonly requestId: string;
  readonly sliverUrn: string;
  readonly sliceUrn: string;
  readonly sliceAuthorityUrn: string;
  readonly sliceAuthorityJwk: string;
  readonly providerUrn: string;
  readonly resources?: ResourceSpec | undefined;
  readonly expiresAt?: Date | undefined;
  readonly exclusive: boolean;
  readonly interfaces: readonly SliverInterface[];
  readonly allocationState: AllocationState;
  readonly clientId: string;
  readonly start: boolean;
  /** The slice's incarnation; absent for a slice made before incarnations. */
  readonly sliceIncarnation?: string | undefined;
  /** The slice's users and their SSH keys (who may log in to the sliver). */
  readonly users?: readonly SliceUserInput[] | undefined;
}

/** A create request once checked. */
export interface CheckedCreate {
  /** The sliver's name (its URN's name part). */
  readonly name: string;
  readonly jwk: Record<string, unknown>;
  readonly allocation: Allocation;
  readonly resources: SliverResources;
  /** The expiry asked for (ms), if any; already known to be in the future. */
  readonly asked: number | undefined;
  /** The image's canonical name (`host` or `oci:<name>`); not yet known to exist. */
  readonly image: string;
  /** The slice's incarnation, when the request names one. */
  readonly incarnation: string | undefined;
  /** The users, checked and normalised (not part of the fingerprint: UpdateSliverUsers changes them). */
  readonly users: SliceUserRecord[];
}

/** Checks a create request (nothing is authorised or written yet). */
export function checkCreate(
  req: CreateSliverInput,
  nodeDomain: string,
  defaults: NodeDefaults,
  // The driver's kind (unused since interfaces are checked by the sliver network's links: network/links.ts).
  _driverKind: string,
  now: number,
): CheckedCreate {
  requestId(req.requestId);
  const sliver = urnField('sliver_urn', req.sliverUrn, 'sliver');
  if (sliver.domain !== nodeDomain) {
    throw new InvalidArgumentError(`sliver_urn must be in the node's domain ${nodeDomain}, not ${sliver.domain}`, { field: 'sliver_urn' });
  }
  urnField('slice_urn', req.sliceUrn, 'slice');
  urnField('slice_authority_urn', req.sliceAuthorityUrn, 'authority');
  urnField('provider_urn', req.providerUrn, 'sp');
  const jwk = parseJwkField(req.sliceAuthorityJwk);
  if (typeof req.clientId !== 'string' || req.clientId.length > 128 || /[\u0000-\u001f]/.test(req.clientId)) {
    throw new InvalidArgumentError('client_id must be at most 128 printable characters', { field: 'client_id' });
  }
  let allocation: Allocation;
  switch (req.allocationState) {
    case AllocationState.ALLOCATION_STATE_UNSPECIFIED:
    case AllocationState.ALLOCATION_STATE_PROVISIONED:
      allocation = 'provisioned';
      break;
    case AllocationState.ALLOCATION_STATE_ALLOCATED:
      allocation = 'allocated';
      break;
    default:
      throw new InvalidArgumentError('allocation_state must be ALLOCATED or PROVISIONED (or unset)', { field: 'allocation_state' });
  }
  const resources = resolveResources(req.resources, defaults);
  const asked = req.expiresAt?.getTime();
  if (asked !== undefined && (!Number.isFinite(asked) || asked <= now)) {
    throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
  }
  const image = imageName(parseImageName(req.resources?.image ?? ''));
  const incarnation = req.sliceIncarnation;
  if (incarnation !== undefined && !INCARNATION.test(incarnation)) {
    throw new InvalidArgumentError('slice_incarnation must be 1 to 64 base64url characters (or absent)', { field: 'slice_incarnation' });
  }
  const users = checkSliceUsers(req.users, 'users');
  return { name: sliver.name, jwk, allocation, resources, asked, image, incarnation, users };
}

/** The fingerprint of a create's arguments: a retry under the same request id must match it. */
export function createFingerprint(req: CreateSliverInput, c: CheckedCreate): string {
  return createHash('sha256')
    .update(
      canonicalJson({
        sliver: req.sliverUrn,
        slice: req.sliceUrn,
        sa: req.sliceAuthorityUrn,
        jwk: c.jwk,
        provider: req.providerUrn,
        client: req.clientId,
        resources: c.resources,
        exclusive: req.exclusive,
        allocation: c.allocation,
        start: req.start,
        expires: c.asked ?? null,
        // Absent without links, so fingerprints of requests without interfaces stay what they were.
        ...(req.interfaces.length ? { interfaces: req.interfaces } : {}),
        // Absent for host, so fingerprints of requests without an image stay what they were.
        ...(c.image !== 'host' ? { image: c.image } : {}),
        ...(c.incarnation !== undefined ? { incarnation: c.incarnation } : {}),
      }),
    )
    .digest('base64url');
}

/** Zero fields take the node's defaults; negative, fractional, absurd or too-small amounts are refused. */
export function resolveResources(spec: ResourceSpec | undefined, d: NodeDefaults): SliverResources {
  const pick = (field: string, value: number | undefined, dflt: number, min: number, max: number): number => {
    const v = value ?? 0;
    if (!Number.isSafeInteger(v) || v < 0)
      throw new InvalidArgumentError(`resources.${field} must be a whole non-negative number, not ${v}`, { field: `resources.${field}` });
    if (v === 0) return dflt;
    if (v > max) throw new InvalidArgumentError(`resources.${field} ${v} is absurd (at most ${max})`, { field: `resources.${field}` });
    if (v < min) throw new InvalidArgumentError(`resources.${field} ${v} is too small (at least ${min})`, { field: `resources.${field}` });
    return v;
  };
  const bandwidth = spec?.bandwidthKbps ?? 0;
  if (!Number.isSafeInteger(bandwidth) || bandwidth < 0 || bandwidth > 100_000_000) {
    throw new InvalidArgumentError('resources.bandwidth_kbps must be between 0 and 100000000', { field: 'resources.bandwidth_kbps' });
  }
  return {
    cpuMillis: pick('cpu_millis', spec?.cpuMillis, d.cpuMillis, MINIMUM.cpuMillis, ABSURD.cpuMillis),
    memMb: pick('mem_mb', spec?.memMb, d.memMb, MINIMUM.memMb, ABSURD.memMb),
    diskMb: pick('disk_mb', spec?.diskMb, d.diskMb, MINIMUM.diskMb, ABSURD.diskMb),
    pids: pick('pids', spec?.pids, d.pids, MINIMUM.pids, ABSURD.pids),
    bandwidthKbps: bandwidth,
  };
}

/** Parses the slice authority's JWK (JSON text); only public P-256 or Ed25519 keys. */
export function parseJwkField(text: string): Record<string, unknown> {
  if (typeof text !== 'string' || text.length === 0) {
    throw new InvalidArgumentError("slice_authority_jwk is required: the slice authority's public key as JWK JSON", {
      field: 'slice_authority_jwk',
    });
  }
  if (text.length > 2048)
    throw new InvalidArgumentError('slice_authority_jwk is too long for a public key', { field: 'slice_authority_jwk' });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('slice_authority_jwk is not JSON', { field: 'slice_authority_jwk' });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError('slice_authority_jwk must be a JSON object', { field: 'slice_authority_jwk' });
  if ('d' in value)
    throw new InvalidArgumentError('slice_authority_jwk holds a private key; send only the public members', {
      field: 'slice_authority_jwk',
    });
  try {
    return publicJwkMembers(value) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidArgumentError(`slice_authority_jwk: ${(err as Error).message}`, { field: 'slice_authority_jwk' });
  }
}
