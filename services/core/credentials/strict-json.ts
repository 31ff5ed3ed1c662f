/**
 * JSON.parse keeps the last of two equal keys without a word, so `{"priv":
 * ["node.read"], "priv": ["sliver.exec"]}` would mean different things to
 * different parsers. Credentials are read with JSON.parse; then the members
 * in the text (one ':' outside strings per member) are counted against the
 * members JSON.parse kept. Equal counts prove no key repeats; otherwise a
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
  if (countMembersInText(text) === countMembersInValue(value)) return { ok: true, value: value as Record<string, unknown> };
  const dup = findDuplicateKey(text) ?? '?';
  return { ok: false, problem: 'duplicate-key', why: `repeats the key ${JSON.stringify(dup.slice(0, 40))}` };
}
