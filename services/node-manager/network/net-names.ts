/**
 * The names the sliver network gives its kernel objects, and how they are
 * found again: a sliver's network namespace `fl-<instance>-<sliver>`, its
 * host-side veth `fv<hash>` (15 characters at most) with an alias naming the
 * node manager instance and the sliver, and the node's nftables tables
 * `fedlab-<instance>` (inet and bridge families). Several node managers on
 * one host never share a name.
 */
import { createHash } from 'node:crypto';
import { assertSafeName } from '../names.js';

/** The short form of an instance id (`nm-<12 hex>` → `<12 hex>`). */
function short(instance: string): string {
  return instance.replace(/^nm-/, '');
}

/** Prefix of every network namespace of this instance. */
export function netnsPrefix(instance: string): string {
  return `fl-${short(instance)}-`;
}

/** The network namespace of a sliver. */
export function netnsName(instance: string, sliver: string): string {
  assertSafeName(sliver, 'sliver name');
  return `${netnsPrefix(instance)}${sliver}`;
}

/** Path of a named network namespace (as `ip netns add` makes it). */
export function netnsPath(ns: string): string {
  return `/run/netns/${ns}`;
}

/** The host side of a sliver's eth0 veth pair. */
export function vethName(instance: string, sliver: string): string {
  return `fv${createHash('sha256').update(`${instance}\0${sliver}`).digest('hex').slice(0, 12)}`;
}

/** What a sliver's host-side veth says of itself (its alias). */
export interface VethLabel {
  readonly sliver: string;
  /** The slice's mark on the bridge. */
  readonly sliceMark: number;
  /** A hash of the slice URN: tells two slices apart whose marks would clash. */
  readonly sliceHash: string;
}

/** A hash of a slice URN (16 hex). */
export function sliceHashOf(sliceUrn: string): string {
  return createHash('sha256').update(sliceUrn).digest('hex').slice(0, 16);
}

/** The alias of a sliver's host-side veth: `fedlab <instance> <sliver> <slice mark> <slice hash>`. */
export function vethAlias(instance: string, l: VethLabel): string {
  return `fedlab ${instance} ${l.sliver} ${l.sliceMark} ${l.sliceHash}`;
}

/** Reads an alias written by {@link vethAlias} for this instance. */
export function parseVethAlias(instance: string, alias: string | undefined): VethLabel | undefined {
  const parts = (alias ?? '').split(' ');
  if (parts.length !== 5 || parts[0] !== 'fedlab' || parts[1] !== instance) return undefined;
  const mark = Number(parts[3]);
  return Number.isSafeInteger(mark) ? { sliver: parts[2] as string, sliceMark: mark, sliceHash: parts[4] as string } : undefined;
}

/** The node's nftables table name (the same in the inet and bridge families). */
export function tableName(instance: string): string {
  return `fedlab-${instance}`;
}

/** A slice's mark on the bridge: slivers whose ports carry the same mark may reach each other. */
export function sliceMarkOf(sliceUrn: string): number {
  // 31 bits, never 0 (0 is "no mark"); a clash between two live slices is resolved by the caller.
  return (createHash('sha256').update(sliceUrn).digest().readUInt32BE(0) % 0x7fff_fffe) + 1;
}
