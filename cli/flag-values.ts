/**
 * Parsers of command-line flag values every command group shares: lists, whole numbers, durations,
 * times and repeatable options. A bad value is an InvalidArgumentError naming the flag (exit 2).
 */
import { InvalidArgumentError } from '../services/core/errors.js';

/** Parses a comma-separated list option (`--priv a,b`), dropping empties. */
export function splitList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Collects a repeatable option (`--env A=1 --env B=2`), one value per use. */
export function repeatable(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Collects a repeatable option that also takes comma-separated values (`--dns a --dns b,c`). */
export function repeatableList(value: string, previous: string[] = []): string[] {
  return [...previous, ...splitList(value)];
}

/** Parses a positive integer option or throws an InvalidArgumentError naming the flag. */
export function parsePositiveInt(value: string, flag: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`${flag} must be a positive whole number, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** Parses a whole number option (0 when absent) or throws an InvalidArgumentError naming the flag. */
export function parseWholeNumber(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value)))
    throw new InvalidArgumentError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Parses `30d`, `12h`, `90m`, `45s`, `2w` into seconds. */
export function parseDuration(value: string, flag = '--ttl'): number {
  const m = /^([0-9]+)([smhdw])$/.exec(value.trim());
  const n = m ? Number(m[1]) * (UNITS[m[2] as string] as number) : NaN;
  if (!m || !Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`${flag} must be a positive duration such as 45s, 90m, 12h, 30d or 2w, got ${JSON.stringify(value)}`);
  return n;
}

/** Parses an RFC 3339 time or seconds since the epoch. */
export function parseTime(value: string, flag: string): Date {
  const time = /^[0-9]+$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
  if (Number.isNaN(time.getTime()) || !/^[0-9]+$|^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new InvalidArgumentError(
      `${flag} must be an RFC 3339 time (2026-05-01T12:00:00Z) or seconds since the epoch, got ${JSON.stringify(value)}`,
    );
  }
  return time;
}

/** Parses `NAME=VALUE` environment flags (`--env`). */
export function envFrom(list: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of list) {
    const i = entry.indexOf('=');
    if (i <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(entry.slice(0, i)))
      throw new InvalidArgumentError(`--env must be NAME=VALUE, got ${JSON.stringify(entry)}`);
    env[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return env;
}
