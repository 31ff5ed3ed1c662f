/**
 * JSON.parse keeps the last of two equal keys without a word, so `{"priv":
 * ["node.read"], "priv": ["sliver.exec"]}` would mean different things to
 * different parsers. Credentials are read with JSON.parse; then a text no
 * longer than the shortest text of the value it parsed to (plus less than
 * one member) has no repeat, which settles compact text at once. Other text
 * has its members (one ':' outside strings per member) counted against the
 * members JSON.parse kept: equal counts prove no key repeats; otherwise a
 * slower scan names the repeated key.
 */
import { isAscii, isUtf8 } from 'node:buffer';

/** The first key that appears twice in one object of the (valid) JSON text, or undefined. */
export function findDuplicateKey(text: string): string | undefined {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const stack: (Set<string> | null)[] = [];
  // The last structural character seen; a string right after '{' or ',' inside an object is a key.
  let prev = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      for (; j < text.length; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j++;
        } else if (d === 0x22) break;
      }
      const top = stack.length > 0 ? stack[stack.length - 1] : null;
      if (top && (prev === 0x7b || prev === 0x2c)) {
        // Escapes spell the same key differently ("a" and "\u0061"), so compare decoded keys.
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        if (top.has(key)) return key;
        top.add(key);
      }
      prev = 0x22;
      i = j;
      continue;
    }
    switch (c) {
      case 0x7b /* { */:
        stack.push(new Set());
        prev = c;
        break;
      case 0x5b /* [ */:
        stack.push(null);
        prev = c;
        break;
      case 0x7d /* } */:
      case 0x5d /* ] */:
        stack.pop();
        prev = c;
        break;
      case 0x2c /* , */:
      case 0x3a /* : */:
        prev = c;
        break;
      case 0x20:
      case 0x09:
      case 0x0a:
      case 0x0d:
        break;
      default:
        prev = 0x30; // part of a number or literal
    }
  }
  return undefined;
}

/** Number of object members in valid JSON text: the ':' characters outside string literals. */
export function countMembersInText(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3a /* : */) n++;
    else if (c === 0x22 /* " */) {
      // Jump to the closing quote: one preceded by an even number of backslashes.
      let q = text.indexOf('"', i + 1);
      for (;;) {
        let b = q - 1;
        while (text.charCodeAt(b) === 0x5c) b--;
        if ((q - 1 - b) % 2 === 0) break;
        q = text.indexOf('"', q + 1);
      }
      i = q;
    }
  }
  return n;
}

/** Number of object members in a parsed JSON value. */
export function countMembersInValue(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  let n = 0;
  if (Array.isArray(v)) {
    for (const x of v) n += countMembersInValue(x);
    return n;
  }
  for (const k in v) n += 1 + countMembersInValue((v as Record<string, unknown>)[k]);
  return n;
}

/**
 * The fewest characters a repeated member can add to a text beyond the value it parses to: a key (at
 * least `""`), a colon, a value (at least one character) and the comma that separates it from the member
 * that repeats it.
 */
const REPEAT_MIN_CHARS = 5;

/**
 * A lower bound on the length of any JSON text that parses to `v`, or -1 when this does not work one
 * out (a number other than a non-negative safe integer: callers then count members instead). A text
 * that repeats a key holds every member of its value plus the members that were overwritten, so it is
 * at least {@link REPEAT_MIN_CHARS} longer than this bound: a text shorter than that has no repeat.
 * Strings count their characters and two quotes (an escape only lengthens), numbers the shorter of their
 * digits and their shortest exponent form, structure its brackets, braces, colons and commas exactly.
 */
export function minimalJsonLength(v: unknown): number {
  if (typeof v === 'string') return v.length + 2;
  if (typeof v === 'number') return minimalIntegerLength(v);
  if (typeof v === 'boolean') return v ? 4 : 5;
  if (v === null) return 4;
  if (typeof v !== 'object') return -1;
  let n = 2;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const m = minimalJsonLength(v[i]);
      if (m < 0) return -1;
      n += m + (i > 0 ? 1 : 0);
    }
    return n;
  }
  // Own keys only, as JSON.parse makes them (inherited ones would overstate the bound).
  const keys = Object.keys(v);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const m = minimalJsonLength((v as Record<string, unknown>)[k]);
    if (m < 0) return -1;
    // `"key":value`, and a comma before every member but the first.
    n += k.length + 3 + m + (i > 0 ? 1 : 0);
  }
  return n;
}

/** Shortest JSON literal of a non-negative safe integer (`1000` may be written `1e3`), or -1 for other numbers. */
function minimalIntegerLength(x: number): number {
  if (!Number.isSafeInteger(x) || x < 0) return -1;
  let digits = 1;
  for (let p = 10; x >= p; p *= 10) digits++;
  // An exponent form is shorter only with three or more trailing zeros.
  if (x % 1000 !== 0 || x === 0) return digits;
  let zeros = 3;
  for (let p = 10_000; x % p === 0; p *= 10) zeros++;
  return Math.min(digits, digits - zeros + 1 + (zeros >= 10 ? 2 : 1));
}

/** Result of {@link parseStrictJsonObject}. */
export type StrictJsonResult = { ok: true; value: Record<string, unknown> } | { ok: false; problem: 'json' | 'duplicate-key'; why: string };

/** Parses UTF-8 bytes as one JSON object with no repeated key anywhere. */
export function parseStrictJsonObject(bytes: Buffer): StrictJsonResult {
  // ASCII (what credentials hold) is its own text; anything else must be UTF-8.
  const ascii = isAscii(bytes);
  if (!ascii && !isUtf8(bytes)) return { ok: false, problem: 'json', why: 'is not UTF-8' };
  // A byte order mark stays in the text, where JSON.parse refuses it.
  const text = bytes.toString(ascii ? 'latin1' : 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'json', why: 'is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, problem: 'json', why: 'is not a JSON object' };
  // Compact text (what issuers write) is proven free of repeats by its length alone; other text is scanned.
  const shortest = minimalJsonLength(value);
  if (shortest >= 0 && text.length - shortest < REPEAT_MIN_CHARS) return { ok: true, value: value as Record<string, unknown> };
  if (countMembersInText(text) === countMembersInValue(value)) return { ok: true, value: value as Record<string, unknown> };
  const dup = findDuplicateKey(text) ?? '?';
  return { ok: false, problem: 'duplicate-key', why: `repeats the key ${JSON.stringify(dup.slice(0, 40))}` };
}
