/**
 * A connection's client certificate checked against the time of each call,
 * not only at the handshake: a connection (and a session stream on it) can
 * outlive its certificate, and identities are cached per connection
 * (context.ts). The validity period is read once, when the identity is made
 * (or, for a bare certificate, kept beside it weakly), so a check is two comparisons.
 */
import type { X509Certificate } from 'node:crypto';
import { UnauthenticatedError } from '../errors.js';

interface Validity {
  readonly from: number;
  readonly to: number;
}

const periods = new WeakMap<X509Certificate, Validity>();

function validityOf(cert: X509Certificate): Validity {
  let v = periods.get(cert);
  if (!v) {
    // An unreadable date reads as NaN, and every comparison with NaN fails the check below.
    v = { from: Date.parse(cert.validFrom), to: Date.parse(cert.validTo) };
    periods.set(cert, v);
  }
  return v;
}

/**
 * Throws UNAUTHENTICATED unless `now` (ms since epoch, wall time as TLS uses) is within the certificate's validity period:
 * the period an identity carries (read when it was made), else the certificate's own.
 */
export function checkCertificateValidity(
  peer: { readonly certificate: X509Certificate; readonly validFromMs?: number; readonly validToMs?: number },
  now: number = Date.now(),
): void {
  let from = peer.validFromMs;
  let to = peer.validToMs;
  if (from === undefined || to === undefined) ({ from, to } = validityOf(peer.certificate));
  if (now >= from && now <= to) return;
  throw new UnauthenticatedError(
    now > to
      ? 'the client certificate has expired since this connection was made; reconnect with a renewed certificate'
      : 'the client certificate is not valid yet; check the clocks, then reconnect',
    { rule: 'certificate_validity' },
  );
}
