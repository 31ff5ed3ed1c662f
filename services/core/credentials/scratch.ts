/**
 * One reusable buffer for bytes that live only within one synchronous step: a link's payload between
 * its base64url text and its JSON text, a signing input handed to node:crypto. Allocating them anew
 * for every link churned Buffer pools and the collector on the uncached path; a view returned here is
 * valid only until the next call of either function, so none may be kept.
 */

// Larger than any link (a chain is at most 16 KiB); longer inputs get a buffer of their own.
const SCRATCH = Buffer.allocUnsafe(16 * 1024);

/** The Latin-1 bytes of `s` (ASCII text, such as a JWS signing input), as a short-lived view. */
export function transientLatin1(s: string): Buffer {
  if (s.length > SCRATCH.length) return Buffer.from(s, 'latin1');
  const n = SCRATCH.write(s, 0, 'latin1');
  return SCRATCH.subarray(0, n);
}

/**
 * The bytes of canonical unpadded base64url `s` as a short-lived view, or undefined when `s` is not
 * canonical: decoded leniently and encoded back, it must give `s` exactly (the encoder writes only its
 * alphabet, no padding, zero spare bits and no length of remainder 1), which costs less than a scan.
 */
export function transientBase64url(s: string): Buffer | undefined {
  const bytes = s.length > SCRATCH.length ? Buffer.from(s, 'base64url') : SCRATCH.subarray(0, SCRATCH.write(s, 0, 'base64url'));
  return bytes.toString('base64url') === s ? bytes : undefined;
}
