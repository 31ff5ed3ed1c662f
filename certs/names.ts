/**
 * Checking what an admin asks to put into a certificate (DNS names, IP
 * addresses, validity) and making serial numbers. Every check throws an
 * {@link InvalidArgumentError} naming the flag, before anything is signed.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../services/core/errors.js';
import type { KeyAlgName } from '../services/core/identity/keys.js';

/** Key algorithms the tooling makes, as given to `--alg`. */
export const KEY_ALG_NAMES: readonly KeyAlgName[] = ['p256', 'ed25519'];

/** The longest validity the tooling signs, in days (100 years). */
export const MAX_DAYS = 36_500;

/** Clock skew tolerated by backdating `notBefore` of new certificates. */
export const BACKDATE_MS = 5 * 60 * 1000;

const DAY_MS = 86_400_000;
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Validates `--alg`. */
export function checkAlg(alg: string | undefined, flag = '--alg'): KeyAlgName {
  if (alg === undefined) return 'p256';
  if (!(KEY_ALG_NAMES as readonly string[]).includes(alg)) {
    throw new InvalidArgumentError(`${flag} ${JSON.stringify(alg)} is not a key algorithm: use p256 or ed25519`, { rule: 'alg' });
  }
  return alg as KeyAlgName;
}

/** Validates a validity in days (a whole number from 1 to {@link MAX_DAYS}). */
export function checkDays(days: number, flag = '--days'): number {
  if (!Number.isSafeInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new InvalidArgumentError(`${flag} must be a whole number of days from 1 to ${MAX_DAYS}, got ${String(days)}`, { rule: 'days' });
  }
  return days;
}

/** `now` plus `days` whole days. */
export function addDays(now: Date, days: number): Date {
  return new Date(now.getTime() + days * DAY_MS);
}

/**
 * Validates and normalises DNS names for subjectAltNames: lower-cased,
 * letters, digits and hyphens per label, a leading `*.` wildcard allowed;
 * duplicates dropped.
 */
export function checkDnsNames(names: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const raw of names) {
    const name = raw.trim().toLowerCase().replace(/\.$/, '');
    const labels = name.split('.');
    const plain = labels[0] === '*' && labels.length > 2 ? labels.slice(1) : labels;
    if (name.length === 0 || name.length > 253 || !plain.every((l) => DNS_LABEL.test(l))) {
      throw new InvalidArgumentError(
        `--dns ${JSON.stringify(raw.slice(0, 80))} is not a DNS name (e.g. localhost, ma.plc.test, *.plc.test)`,
        { rule: 'dns' },
      );
    }
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** Validates IPv4/IPv6 addresses for subjectAltNames; duplicates dropped. */
export function checkIpAddresses(addrs: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const raw of addrs) {
    const addr = raw.trim();
    if (isIP(addr) === 0)
      throw new InvalidArgumentError(`--ip ${JSON.stringify(raw.slice(0, 80))} is not an IPv4 or IPv6 address`, { rule: 'ip' });
    if (!out.includes(addr)) out.push(addr);
  }
  return out;
}

/** Canonical text of a serial number: lower-case hex without leading zeros. */
export function normalizeSerial(hex: string): string {
  const clean = hex.replace(/:/g, '').trim();
  if (!/^[0-9a-fA-F]+$/.test(clean)) throw new InvalidArgumentError(`serial ${JSON.stringify(hex.slice(0, 80))} is not hexadecimal`);
  return BigInt(`0x${clean}`).toString(16);
}

/** A random, positive, non-zero 128-bit serial number (hex; the DER encoder adds the sign byte). */
export function randomSerial(): string {
  for (;;) {
    const s = normalizeSerial(randomBytes(16).toString('hex'));
    if (s !== '0') return s;
  }
}
