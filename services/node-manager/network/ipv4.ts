/**
 * IPv4 addresses and CIDR networks as numbers: parsing, formatting and
 * overlap, for the sliver network's address plan. Only what the plan needs;
 * IPv6 is not planned (slivers get an IPv4 address and NAT).
 */

/** A network: its first address as an unsigned 32-bit number and its prefix length. */
export interface Ipv4Net {
  readonly base: number;
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Whether `s` is a dotted-quad IPv4 address. */
export function isIpv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => OCTET.test(p));
}

/** The address as an unsigned 32-bit number; throws on anything else. */
export function ipv4ToNumber(s: string): number {
  if (!isIpv4(s)) throw new Error(`${JSON.stringify(s)} is not an IPv4 address`);
  return s.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

/** Dotted-quad form of an unsigned 32-bit number. */
export function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** Parses `a.b.c.d/len` (host bits may be set when `strict` is false: the network is taken). */
export function parseCidr(s: string, strict = true): Ipv4Net {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m || !isIpv4(m[1] as string) || Number(m[2]) > 32) throw new Error(`${JSON.stringify(s)} is not an IPv4 network a.b.c.d/len`);
  const prefix = Number(m[2]);
  const addr = ipv4ToNumber(m[1] as string);
  const base = addr - (addr % 2 ** (32 - prefix));
  if (strict && base !== addr) throw new Error(`${s} has host bits set; the network is ${numberToIpv4(base)}/${prefix}`);
  return { base, prefix };
}

/** Whether `s` is an IPv4 network in CIDR form with no host bits set. */
export function isCidr(s: string): boolean {
  try {
    parseCidr(s);
    return true;
  } catch {
    return false;
  }
}

/** Number of addresses of a network. */
export function sizeOf(net: Ipv4Net): number {
  return 2 ** (32 - net.prefix);
}

/** Whether an address (number) lies in a network. */
export function contains(net: Ipv4Net, addr: number): boolean {
  return addr >= net.base && addr < net.base + sizeOf(net);
}

/** Whether two networks share an address. */
export function overlaps(a: Ipv4Net, b: Ipv4Net): boolean {
  return a.base < b.base + sizeOf(b) && b.base < a.base + sizeOf(a);
}

/** `a.b.c.d/len` of a network. */
export function formatCidr(net: Ipv4Net): string {
  return `${numberToIpv4(net.base)}/${net.prefix}`;
}
