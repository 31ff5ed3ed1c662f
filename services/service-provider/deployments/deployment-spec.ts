/**
 * Reading and checking a DeploymentSpec: everything the provider itself can
 * check (the slice to use or the sites to ask, each step's program,
 * environment, stdin and name, the service as the last step, the expiry) is
 * checked before anything is recorded; every error names its field.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { checkStitchedLinks } from '../../core/topology/stitched-links.js';
import { urnField } from '../../core/validate.js';
import { SiteRequest } from '../../generated/fedlab/v1/common.js';
import type { DeploymentSpec, DeployStep } from '../../generated/fedlab/v1/service_provider.js';
import { StitchedLinks } from '../../generated/fedlab/v1/slice_authority.js';
import type { SpecRecord, StepRecord } from '../records.js';
import { nameField } from '../validate.js';

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Most steps in one deployment. */
const MAX_STEPS = 32;

/** What a spec is checked against. */
export interface SpecContext {
  /** The one slice authority this provider works with. */
  readonly sliceAuthorityUrn: string;
  /** Domains of the sites the provider knows (config sites[]). */
  readonly knownSites: ReadonlyMap<string, unknown>;
  /** The time now (ms). */
  readonly now: number;
}

/** Reads and checks a DeploymentSpec into its record. */
export function checkSpec(spec: DeploymentSpec | undefined, context: SpecContext): SpecRecord {
  if (!spec) throw new InvalidArgumentError('spec is required: the slice to use or create and the steps to run', { field: 'spec' });
  const sliceUrn = spec.sliceUrn ? urnField('spec.slice_urn', spec.sliceUrn, 'slice') && spec.sliceUrn : '';
  if (spec.sliceAuthorityUrn && spec.sliceAuthorityUrn !== context.sliceAuthorityUrn) {
    throw new InvalidArgumentError(`spec.slice_authority_urn: this provider works with ${context.sliceAuthorityUrn} only; leave it empty`, {
      field: 'spec.slice_authority_urn',
    });
  }
  if (spec.sliceName) nameField('spec.slice_name', spec.sliceName);
  if (!sliceUrn && spec.sites.length === 0) {
    throw new InvalidArgumentError(
      'spec.sites is empty: name at least one site and its nodes (or give spec.slice_urn of an existing slice)',
      { field: 'spec.sites' },
    );
  }
  if (sliceUrn && spec.sites.length > 0)
    throw new InvalidArgumentError('give spec.slice_urn or spec.sites, not both', { field: 'spec.sites' });
  const domains = new Set<string>();
  for (const s of spec.sites) {
    if (domains.has(s.site)) throw new InvalidArgumentError(`site ${s.site} appears twice in spec.sites`, { field: 'spec.sites' });
    domains.add(s.site);
    if (!context.knownSites.has(s.site)) {
      throw new InvalidArgumentError(
        `site ${s.site} is not one this provider knows (config sites[]: ${[...context.knownSites.keys()].join(', ') || 'none'})`,
        { field: 'spec.sites' },
      );
    }
  }
  const stitched = spec.stitchedLinks?.links ?? [];
  if (sliceUrn && stitched.length > 0) {
    throw new InvalidArgumentError('spec.stitched_links is for a slice the deployment creates: leave it empty with spec.slice_urn', {
      field: 'spec.stitched_links',
    });
  }
  checkStitchedLinks(stitched, spec.sites, 'spec.stitched_links');
  if (spec.steps.length === 0)
    throw new InvalidArgumentError('spec.steps is empty: give at least one command to run', { field: 'spec.steps' });
  if (spec.steps.length > MAX_STEPS) throw new InvalidArgumentError(`spec.steps: at most ${MAX_STEPS} steps`, { field: 'spec.steps' });
  const steps = spec.steps.map((s, i) => checkStep(s, i, i === spec.steps.length - 1));
  const expiresAt = spec.expiresAt?.getTime();
  if (expiresAt !== undefined && expiresAt <= context.now)
    throw new InvalidArgumentError('spec.expires_at is in the past', { field: 'spec.expires_at' });
  return {
    sliceUrn,
    sliceAuthorityUrn: context.sliceAuthorityUrn,
    sliceName: spec.sliceName,
    mode: spec.mode,
    sites: spec.sites.map((s) => SiteRequest.toJSON(s)),
    ...(stitched.length > 0 ? { stitchedLinks: StitchedLinks.toJSON({ links: stitched }) } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    steps,
  };
}

/** Reads and checks step `i` (`last`: the last step, the only one that may be the service). */
function checkStep(s: DeployStep, i: number, last: boolean): StepRecord {
  const field = `spec.steps[${i}]`;
  if (s.argv.length === 0 || !s.argv[0])
    throw new InvalidArgumentError(`${field}.argv is empty: give the program and its arguments`, { field: `${field}.argv` });
  if (s.argv.length > 1024 || s.argv.some((a) => typeof a !== 'string' || a.length > 65_536 || a.includes('\0'))) {
    throw new InvalidArgumentError(`${field}.argv: at most 1024 arguments of at most 64 KiB, without NUL`, { field: `${field}.argv` });
  }
  for (const [k, v] of Object.entries(s.env)) {
    if (!ENV_KEY.test(k) || v.includes('\0') || v.length > 65_536)
      throw new InvalidArgumentError(`${field}.env: bad variable ${JSON.stringify(k.slice(0, 40))}`, { field: `${field}.env` });
  }
  if (s.stdin && s.stdin.length > 1024 * 1024) throw new InvalidArgumentError(`${field}.stdin is over 1 MiB`, { field: `${field}.stdin` });
  if (s.service && !last)
    throw new InvalidArgumentError(`${field} is the service but not the last step: the service must be the last step`, {
      field: `${field}.service`,
    });
  const name = s.name || (s.service ? 'service' : `step-${i + 1}`);
  if (name.length > 64 || /[\u0000-\u001f]/.test(name))
    throw new InvalidArgumentError(`${field}.name: at most 64 printable characters`, { field: `${field}.name` });
  return {
    name,
    argv: [...s.argv],
    env: { ...s.env },
    ...(s.stdin !== undefined ? { stdin: Buffer.from(s.stdin).toString('base64') } : {}),
    timeoutMs: s.timeoutMs,
    service: s.service,
  };
}
