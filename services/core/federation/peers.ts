/**
 * The peers directory: one file per peered domain, shared by every service of
 * a domain (`federation.peers_dir`). `fedlab federation peer add` writes a
 * record after checking the peer's bundle against the fingerprint the admin
 * pinned; services read the directory (and notice changes) to trust the
 * peer's CAs for TLS and its authorities for credentials over its own objects.
 *
 * A record is `<domain>.json`, written whole to a temporary file and renamed
 * into place, so a reader never sees half a record.
 */
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFileAtomically } from '../atomic-file.js';
import { checkEndpoint } from '../endpoint.js';
import { InvalidArgumentError } from '../errors.js';
import { bundleFingerprint, normalizeFingerprint, parseTrustBundle, type TrustBundle } from '../identity/trust-bundle.js';
import { isValidDomain } from '../identity/urn.js';

/** The outcome of the last refresh of a peer's bundle. */
export interface RefreshOutcome {
  /** RFC 3339 time of the attempt. */
  readonly at: string;
  /** `accepted` a newer bundle, `unchanged`, `refused` a bundle that does not chain from the trusted one, or `unreachable`. */
  readonly result: 'accepted' | 'unchanged' | 'refused' | 'unreachable';
  /** Fingerprint of the bundle the peer served (when it answered). */
  readonly fingerprint?: string;
  /** Why it was refused or unreachable. */
  readonly detail?: string;
}

/** One peered domain, as stored in `<peers_dir>/<domain>.json`. */
export interface PeerRecord {
  readonly v: 1;
  readonly domain: string;
  /** `host:port` of a server of the peer serving Federation.GetBundle (refreshes dial it). */
  readonly endpoint: string;
  /** The fingerprint the admin pinned (`peer add --fingerprint`). */
  readonly pinned_fingerprint: string;
  /** RFC 3339 time of the pin. */
  readonly pinned_at: string;
  /** The bundle trusted now: the pinned one, or a refresh of it that chained from it. */
  readonly bundle: TrustBundle;
  /** Fingerprint of `bundle`. */
  readonly fingerprint: string;
  /** RFC 3339 time `bundle` was accepted. */
  readonly accepted_at: string;
  readonly last_refresh?: RefreshOutcome;
}

const RECORD_KEYS = new Set([
  'v',
  'domain',
  'endpoint',
  'pinned_fingerprint',
  'pinned_at',
  'bundle',
  'fingerprint',
  'accepted_at',
  'last_refresh',
]);
const RESULTS = new Set(['accepted', 'unchanged', 'refused', 'unreachable']);

function bad(file: string, why: string): never {
  throw new InvalidArgumentError(`peer record ${file}: ${why}`);
}

/** Parses and checks a record (its bundle is validated, its fingerprint recomputed). */
export async function parsePeerRecord(text: string, file = 'peer record'): Promise<PeerRecord> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    bad(file, 'not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(file, 'not a JSON object');
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!RECORD_KEYS.has(k)) bad(file, `unknown field ${JSON.stringify(k)}`);
  if (r.v !== 1) bad(file, `unsupported version ${JSON.stringify(r.v)}`);
  if (typeof r.domain !== 'string' || !isValidDomain(r.domain)) bad(file, 'domain must be a lower-case DNS name');
  if (typeof r.endpoint !== 'string') bad(file, 'endpoint must be host:port');
  checkEndpoint(r.endpoint);
  if (typeof r.pinned_fingerprint !== 'string') bad(file, 'pinned_fingerprint missing');
  const pinned = normalizeFingerprint(r.pinned_fingerprint);
  for (const t of ['pinned_at', 'accepted_at'] as const) {
    if (typeof r[t] !== 'string' || Number.isNaN(Date.parse(r[t]))) bad(file, `${t} must be an RFC 3339 time`);
  }
  const bundle = await parseTrustBundle(r.bundle).catch((err: unknown) => bad(file, (err as Error).message));
  if (bundle.domain !== r.domain) bad(file, `its bundle is of ${bundle.domain}, not ${r.domain}`);
  const fingerprint = bundleFingerprint(bundle);
  if (r.fingerprint !== fingerprint) bad(file, 'fingerprint is not the fingerprint of its bundle');
  let last: RefreshOutcome | undefined;
  if (r.last_refresh !== undefined) {
    const l = r.last_refresh as Record<string, unknown>;
    if (typeof l !== 'object' || l === null || typeof l.at !== 'string' || typeof l.result !== 'string' || !RESULTS.has(l.result))
      bad(file, 'last_refresh is malformed');
    last = {
      at: l.at,
      result: l.result as RefreshOutcome['result'],
      ...(typeof l.fingerprint === 'string' ? { fingerprint: l.fingerprint } : {}),
      ...(typeof l.detail === 'string' ? { detail: l.detail } : {}),
    };
  }
  return {
    v: 1,
    domain: r.domain,
    endpoint: r.endpoint,
    pinned_fingerprint: pinned,
    pinned_at: r.pinned_at as string,
    bundle,
    fingerprint,
    accepted_at: r.accepted_at as string,
    ...(last ? { last_refresh: last } : {}),
  };
}

/** A peers directory. Missing is the same as empty (nothing peered). */
export class PeerDirectory {
  constructor(readonly dir: string) {}

  /** The file of a domain's record. */
  fileOf(domain: string): string {
    if (!isValidDomain(domain)) throw new InvalidArgumentError(`${JSON.stringify(domain.slice(0, 80))} is not a lower-case DNS name`);
    return join(this.dir, `${domain}.json`);
  }

  /** A stamp that changes whenever a record is added, removed or rewritten (names, sizes and mtimes). */
  async stamp(): Promise<string> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
    } catch {
      return '';
    }
    const parts: string[] = [];
    for (const n of names) {
      try {
        const st = await stat(join(this.dir, n));
        parts.push(`${n}:${st.size}:${st.mtimeMs}`);
      } catch {
        parts.push(`${n}:gone`);
      }
    }
    return parts.join('|');
  }

  /** Reads every record; a record that does not parse is reported in `errors` and left out (fail closed). */
  async list(): Promise<{ readonly records: PeerRecord[]; readonly errors: { readonly file: string; readonly error: string }[] }> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
    } catch {
      return { records: [], errors: [] };
    }
    const records: PeerRecord[] = [];
    const errors: { file: string; error: string }[] = [];
    for (const n of names) {
      const file = join(this.dir, n);
      try {
        const rec = await parsePeerRecord(await readFile(file, 'utf8'), file);
        if (`${rec.domain}.json` !== n)
          throw new InvalidArgumentError(`peer record ${file} is for ${rec.domain}; its file must be ${rec.domain}.json`);
        records.push(rec);
      } catch (err) {
        errors.push({ file, error: (err as Error).message });
      }
    }
    return { records, errors };
  }

  /** One domain's record, or undefined when it is not peered. */
  async get(domain: string): Promise<PeerRecord | undefined> {
    const file = this.fileOf(domain);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return parsePeerRecord(text, file);
  }

  /** Writes a record whole (temporary file, fsync, rename). Creates the directory (0700) if needed. */
  async put(record: PeerRecord): Promise<void> {
    const file = this.fileOf(record.domain);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await replaceFileAtomically(file, `${JSON.stringify(record, null, 2)}\n`, 0o644);
  }

  /** Removes a domain's record; false when there was none. */
  async remove(domain: string): Promise<boolean> {
    const file = this.fileOf(domain);
    try {
      await rm(file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }
}
