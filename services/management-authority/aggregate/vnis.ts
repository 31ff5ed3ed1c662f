/**
 * VXLAN network identifiers of a site's links. Each link of a slice that holds
 * nodes has one, unique at the site: it lives in the slice record's links, so
 * it is written in the same batch as the Allocate (or swap-in) that takes it
 * and is gone with the slice record (Delete, expiry, a released hold) or at
 * swap-out. Which are taken is read from the ledger under its mutex, so two
 * Allocates never take the same one. Each site starts its search at an offset
 * from a hash of its URN, so that two sites whose nodes share a host rarely
 * meet on one VNI (the kernel allows a VNI once per host and UDP port).
 */
import { createHash } from 'node:crypto';
import type { LinkSpec, SliceRecord } from '../records.js';

/** Largest VNI (24 bits). */
export const MAX_VNI = 0xff_ffff;
/** VNIs below this are left to the host's own use. */
const FIRST_VNI = 4096;

/** Where a site starts looking for a free VNI. */
export function vniBase(maUrn: string): number {
  const h = createHash('sha256').update(maUrn).digest().readUInt32BE(0);
  return FIRST_VNI + (h % (MAX_VNI - FIRST_VNI + 1));
}

/** The VNIs the site's slices hold now. */
export function vnisInUse(slices: Iterable<SliceRecord>): Set<number> {
  const used = new Set<number>();
  for (const s of slices) for (const l of s.links) if (l.vni !== undefined) used.add(l.vni);
  return used;
}

/**
 * The links with a VNI each (those that have one keep it), taken from `used`, which is updated. Throws when
 * the site has none left (16 million links).
 */
export function withVnis<L extends LinkSpec>(links: readonly L[], used: Set<number>, base: number): L[] {
  let next = base;
  const span = MAX_VNI - FIRST_VNI + 1;
  return links.map((l) => {
    if (l.vni !== undefined) return l;
    for (let i = 0; i < span; i++) {
      const v = FIRST_VNI + ((next - FIRST_VNI + i) % span);
      if (!used.has(v)) {
        used.add(v);
        next = v + 1 > MAX_VNI ? FIRST_VNI : v + 1;
        return { ...l, vni: v };
      }
    }
    throw new Error('this site has no VXLAN network identifier left');
  });
}

/**
 * The links without their VNIs (swapped out: the slice holds no node, so no VNI either) — except stitched links,
 * whose VNI was agreed with the peer site and is kept until the slice goes.
 */
export function withoutVnis(links: readonly LinkSpec[]): LinkSpec[] {
  return links.map((l) => {
    if (l.stitch) return l;
    const { vni: _v, ...rest } = l;
    return rest;
  });
}
