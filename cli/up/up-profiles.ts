/**
 * The profiles `fedlab up` writes for the federation it runs (see cli/profiles.ts), so the commands it
 * prints are short: `<folder>` is the operator at the service provider, `<folder>-provider` the provider
 * at the slice authority, `<folder>-<domain>` each site's administrator at its MA, `<folder>-member` the
 * provider's member with its delegated chain at the node managers (every domain's CA trusted). Named after the
 * folder, so that two federations on one machine do not take each other's; written again at each
 * run (ports may change).
 */
import { basename } from 'node:path';
import { writeProfile, type ProfileLocation } from '../profiles.js';
import type { LocalFederation } from './federation.js';

/** The names of a federation's profiles. */
export interface UpProfiles {
  /** The operator at the service provider (and the slice authority's address). */
  readonly operator: string;
  /** The provider at the slice authority. */
  readonly provider: string;
  /** The provider's member at the node managers (its certificate, chain and every domain's CA). */
  readonly member: string;
  /** Each site's administrator at its MA, by domain. */
  readonly sites: ReadonlyMap<string, string>;
  /** The profiles file. */
  readonly file: string;
}

/** The profiles' base name: the folder's name, made a profile name (`up` when nothing of it fits). */
export function profileBase(dir: string): string {
  const name = basename(dir)
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 40);
  return name || 'up';
}

/** Writes (replacing) the federation's profiles. Throws when the profiles file cannot be written. */
export function writeUpProfiles(fed: LocalFederation, location: ProfileLocation = {}): UpProfiles {
  const base = profileBase(fed.dir);
  const h = fed.homePaths;
  const options = { ...location, replace: true };
  const file = writeProfile(base, { sp: fed.spAddress, sa: fed.saAddress, tlsDir: h.operator }, options);
  writeProfile(`${base}-provider`, { sa: fed.saAddress, sp: fed.spAddress, tlsDir: h.sp }, options);
  writeProfile(`${base}-member`, { tlsDir: h.member, ca: fed.allCaFile, sliverChain: fed.memberChainFile }, options);
  const sites = new Map<string, string>();
  for (const s of fed.sites) {
    const name = `${base}-${s.domain}`;
    writeProfile(name, { ma: s.address, tlsDir: s.paths.admin }, options);
    sites.set(s.domain, name);
  }
  return { operator: base, provider: `${base}-provider`, member: `${base}-member`, sites, file };
}
