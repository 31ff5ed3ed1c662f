/**
 * What makes a child a true attenuation of its parent (docs/design.md §5 rule 3, the
 * part that needs no signature). Shared by the verifier and by issuance, so a
 * delegation that would not verify is refused before it is signed.
 */
import { parseTarget, targetContains, type Target } from '../identity/urn.js';
import type { CredentialRule } from './errors.js';
import { LIMIT_KEYS, type CredentialClaims, type LimitKey, type Limits } from './format.js';

/** A broken rule and why. */
export interface RuleProblem {
  readonly rule: CredentialRule;
  readonly why: string;
}

type Claims = Pick<CredentialClaims, 'dlg' | 'priv' | 'tgt' | 'lim' | 'exp' | 'nbf'>;

/** Limits in effect after `own` is applied on top of the parent's effective limits (absent keys inherit). */
export function effectiveLimits(parent: Limits | undefined, own: Limits): Limits {
  const p = parent ?? NO_LIMITS;
  // Spelled out rather than looped over LIMIT_KEYS: named stores give every result the same shape, cheaply.
  const out: { -readonly [K in LimitKey]?: number } = {};
  const slivers = own.slivers ?? p.slivers;
  if (slivers !== undefined) out.slivers = slivers;
  const cpu = own.cpu_millis ?? p.cpu_millis;
  if (cpu !== undefined) out.cpu_millis = cpu;
  const mem = own.mem_mb ?? p.mem_mb;
  if (mem !== undefined) out.mem_mb = mem;
  const disk = own.disk_mb ?? p.disk_mb;
  if (disk !== undefined) out.disk_mb = disk;
  const ttl = own.ttl_s ?? p.ttl_s;
  if (ttl !== undefined) out.ttl_s = ttl;
  return out;
}

const NO_LIMITS: Limits = Object.freeze({});

/**
 * The first rule `child` breaks against `parent`, checked in the order
 * dlg, priv, tgt, lim, exp, nbf; undefined when the child is a true attenuation.
 * `parentLimits` are the parent's effective limits (inherited ones included).
 */
export function attenuationProblem(
  parent: Claims,
  parentTargets: readonly Target[],
  parentLimits: Limits,
  child: Claims,
  childTargets: readonly Target[] = child.tgt.map((t) => parseTarget(t)),
): RuleProblem | undefined {
  if (parent.dlg < 1) return { rule: 'dlg', why: 'the parent allows no further delegation (its dlg is 0)' };
  if (child.dlg > parent.dlg - 1)
    return { rule: 'dlg', why: `dlg must be at most ${parent.dlg - 1} (the parent's dlg minus one), it is ${child.dlg}` };
  for (const p of child.priv) {
    if (!parent.priv.includes(p)) return { rule: 'priv', why: `it grants ${p}, which its parent does not hold` };
  }
  for (let i = 0; i < childTargets.length; i++) {
    if (!coveredBy(parentTargets, childTargets[i] as Target)) {
      return { rule: 'tgt', why: `target ${child.tgt[i] as string} is not covered by any of the parent's targets` };
    }
  }
  const lim = child.lim;
  // Named reads, not a loop over LIMIT_KEYS: this runs for every link of every uncached verification.
  if (
    above(lim.slivers, parentLimits.slivers) ||
    above(lim.cpu_millis, parentLimits.cpu_millis) ||
    above(lim.mem_mb, parentLimits.mem_mb)
  ) {
    return limitProblem(lim, parentLimits);
  }
  if (above(lim.disk_mb, parentLimits.disk_mb) || above(lim.ttl_s, parentLimits.ttl_s)) return limitProblem(lim, parentLimits);
  if (child.exp > parent.exp) return { rule: 'exp', why: `it expires after its parent (${new Date(parent.exp * 1000).toISOString()})` };
  if (child.nbf < parent.nbf) return { rule: 'nbf', why: `its nbf is before its parent's (${new Date(parent.nbf * 1000).toISOString()})` };
  return undefined;
}

function coveredBy(parents: readonly Target[], t: Target): boolean {
  for (let j = 0; j < parents.length; j++) if (targetContains(parents[j] as Target, t)) return true;
  return false;
}

function above(own: number | undefined, cap: number | undefined): boolean {
  return own !== undefined && cap !== undefined && own > cap;
}

/** The first limit of `lim` above its cap, in LIMIT_KEYS order. */
function limitProblem(lim: Limits, caps: Limits): RuleProblem | undefined {
  for (const k of LIMIT_KEYS) {
    const cap = caps[k];
    const own = lim[k];
    if (cap !== undefined && own !== undefined && own > cap) return { rule: 'lim', why: `lim.${k} is ${own}, above the parent's ${cap}` };
  }
  return undefined;
}

/**
 * Rule `inc` (after `nbf`): a link that names a slice incarnation names the one its parent chain is
 * bound to, or binds a chain bound to none (narrowing it to one life of the slice). `parentIncarnation`
 * is the parent chain's effective incarnation (the last one any of its links named).
 */
export function incarnationProblem(parentIncarnation: string | undefined, child: Pick<CredentialClaims, 'inc'>): RuleProblem | undefined {
  if (child.inc === undefined || parentIncarnation === undefined || child.inc === parentIncarnation) return undefined;
  return { rule: 'inc', why: `it names slice incarnation ${child.inc}, but its parent chain is bound to incarnation ${parentIncarnation}` };
}

/** The incarnation a chain whose parent is bound to `parentIncarnation` is bound to after `own` (absent: inherited). */
export function effectiveIncarnation(parentIncarnation: string | undefined, own: Pick<CredentialClaims, 'inc'>): string | undefined {
  return own.inc ?? parentIncarnation;
}
