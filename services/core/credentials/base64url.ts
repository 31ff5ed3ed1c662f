/**
 * Canonical base64url (RFC 4648 §5, no padding). Node's decoder is lenient: it
 * skips '=' and accepts '+' and '/', and ignores non-zero trailing bits, so
 * the same bytes could travel in several spellings. Credentials are hashed by
 * their text (`prf`), so exactly one spelling is accepted.
 */

const ALPHABET = /^[A-Za-z0-9_-]*$/;
// Value of each base64url character, -1 for others.
const VALUE = new Int8Array(128).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('').forEach((c, i) => (VALUE[c.charCodeAt(0)] = i));

/** True when `s` is canonical unpadded base64url: its alphabet only, no impossible length, zero trailing bits. */
export function isCanonicalBase64url(s: string): boolean {
  if (!ALPHABET.test(s)) return false;
  const rem = s.length % 4;
  if (rem === 1) return false;
  if (rem === 0) return true;
  const last = VALUE[s.charCodeAt(s.length - 1)] as number;
  // 2 chars carry 8 bits (4 spare), 3 chars carry 16 bits (2 spare); the spare bits must be zero.
  return rem === 2 ? (last & 0x0f) === 0 : (last & 0x03) === 0;
}

/** Decodes canonical base64url, or returns undefined for anything else. */
export function decodeBase64url(s: string): Buffer | undefined {
  return isCanonicalBase64url(s) ? Buffer.from(s, 'base64url') : undefined;
}
