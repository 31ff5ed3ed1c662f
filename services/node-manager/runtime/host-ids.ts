/**
 * Checks, at start-up, that the slivers' id ranges belong to nobody else on
 * this host: none of their ids below 100000 (where distributions put system
 * and login accounts), no account of /etc/passwd or group of /etc/group in
 * them, no range that /etc/subuid or /etc/subgid gives to another user
 * (rootless containers); and that no two slivers' stored ranges share an id
 * (possible only for slivers made before ranges were freed by overlap): the
 * later of two such slivers must not run. `container.allow_host_ids` lifts
 * the host checks, never the last one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IDS_PER_SLIVER, rangeOf, rangesOverlap, type IdRange, type IdRangeSettings } from './id-ranges.js';

/** The lowest host id a sliver may be given without `container.allow_host_ids`. */
export const MIN_SLIVER_ID = 100_000;

/** The host's id files as text (absent when the file is). */
export interface HostIdFiles {
  readonly passwd?: string;
  readonly group?: string;
  readonly subuid?: string;
  readonly subgid?: string;
}

/** A sliver and the range its record holds. */
export interface RangeHolder {
  readonly name: string;
  readonly ids: IdRange;
  readonly createdAt: number;
}

/** What the check found. */
export interface SliverIdCheck {
  /** Reasons to refuse to start, each a sentence naming what clashes. */
  readonly errors: string[];
  /** Slivers whose stored range is not what the current config gives their slot (they keep theirs; new slivers avoid it). */
  readonly moved: string[];
  /** Slivers that share host ids with an older one: they must not run (the reason says with which). */
  readonly shared: { readonly name: string; readonly reason: string }[];
}

/** Reads the id files under `etc`. */
export function readHostIdFiles(etc = '/etc'): HostIdFiles {
  const read = (f: string): string | undefined => {
    try {
      return readFileSync(join(etc, f), 'utf8');
    } catch {
      return undefined;
    }
  };
  const out: Record<string, string> = {};
  for (const f of ['passwd', 'group', 'subuid', 'subgid'] as const) {
    const text = read(f);
    if (text !== undefined) out[f] = text;
  }
  return out as HostIdFiles;
}

/** `name:x:id:...` lines: names and the id of field 3. */
function accounts(text: string | undefined): { name: string; id: number }[] {
  return (text ?? '')
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 3 && /^\d+$/.test(f[2] ?? ''))
    .map((f) => ({ name: f[0] as string, id: Number(f[2]) }));
}

/** `name:start:count` lines of subuid/subgid, without root's own (those are for root's containers: ours). */
function delegated(text: string | undefined): { name: string; start: number; count: number }[] {
  return (text ?? '')
    .split('\n')
    .map((l) => l.trim().split(':'))
    .filter((f) => f.length === 3 && /^\d+$/.test(f[1] ?? '') && /^\d+$/.test(f[2] ?? ''))
    .map((f) => ({ name: f[0] as string, start: Number(f[1]), count: Number(f[2]) }))
    .filter((d) => d.name !== 'root' && d.name !== '0' && d.count > 0);
}

/** Why host ids [first, first + size) are not free for slivers; empty when they are. */
export function hostIdClashes(first: number, size: number, files: HostIdFiles): string[] {
  const span = { hostId: first, size };
  const out: string[] = [];
  if (first < MIN_SLIVER_ID) out.push(`ids from ${first} are below ${MIN_SLIVER_ID}, where the host's system and login accounts live`);
  const inSpan = (id: number) => id >= first && id < first + size;
  const users = accounts(files.passwd).filter((a) => inSpan(a.id));
  if (users.length) out.push(`host accounts of /etc/passwd have ids in it: ${users.map((a) => `${a.name} (${a.id})`).join(', ')}`);
  const groups = accounts(files.group).filter((a) => inSpan(a.id));
  if (groups.length) out.push(`host groups of /etc/group have ids in it: ${groups.map((a) => `${a.name} (${a.id})`).join(', ')}`);
  for (const [file, text] of [
    ['/etc/subuid', files.subuid],
    ['/etc/subgid', files.subgid],
  ] as const) {
    const taken = delegated(text).filter((d) => rangesOverlap(span, { hostId: d.start, size: d.count }));
    if (taken.length)
      out.push(`${file} gives part of it to other users: ${taken.map((d) => `${d.name} ${d.start}-${d.start + d.count - 1}`).join(', ')}`);
  }
  return out;
}

/** Checks the configured ranges and those the records hold against the host and each other. */
export function checkSliverIds(o: {
  settings: IdRangeSettings;
  records: readonly RangeHolder[];
  files: HostIdFiles;
  allowHostIds: boolean;
}): SliverIdCheck {
  const errors: string[] = [];
  const moved: string[] = [];
  const shared: { name: string; reason: string }[] = [];
  const size = o.settings.count * IDS_PER_SLIVER;
  if (!o.allowHostIds) {
    const clash = hostIdClashes(o.settings.base, size, o.files);
    if (clash.length) {
      errors.push(
        `container.uid_base ${o.settings.base} with container.id_ranges ${o.settings.count} gives slivers host ids ${o.settings.base}-${o.settings.base + size - 1}, which are not free: ${clash.join('; ')}. Choose a uid_base whose ranges clash with nothing (the default 200000, or above every /etc/subuid range), or set container.allow_host_ids to true if these ids are really free`,
      );
    }
  }
  for (const [i, r] of o.records.entries()) {
    const now = rangeOf(r.ids.slot, o.settings);
    if (now.hostId !== r.ids.hostId)
      moved.push(`${r.name} (${r.ids.hostId}-${r.ids.hostId + r.ids.size - 1}, made under another container.uid_base)`);
    if (!o.allowHostIds && now.hostId !== r.ids.hostId) {
      const clash = hostIdClashes(r.ids.hostId, r.ids.size, o.files);
      if (clash.length)
        errors.push(
          `sliver ${r.name} holds host ids ${r.ids.hostId}-${r.ids.hostId + r.ids.size - 1}, which are not free: ${clash.join('; ')}; delete the sliver`,
        );
    }
    for (const other of o.records.slice(i + 1)) {
      if (!rangesOverlap(r.ids, other.ids)) continue;
      const [older, newer] = r.createdAt <= other.createdAt ? [r, other] : [other, r];
      shared.push({
        name: newer.name,
        reason: `its host ids ${newer.ids.hostId}-${newer.ids.hostId + newer.ids.size - 1} overlap those of sliver ${older.name} (${older.ids.hostId}-${older.ids.hostId + older.ids.size - 1}), made under another container.uid_base; it may not run: delete it and create it again`,
      });
    }
  }
  return { errors, moved, shared };
}
