/**
 * A connection's client certificate checked against the time of each call,
 * not only at the handshake: a connection (and a session stream on it) can
 * outlive its certificate, and identities are cached per connection
 * (context.ts). The validity period is read once, when the identity is made
 * (identity/certificate.ts), so a check is two comparisons.
 */
import type { CertIdentity } from '../identity/certificate.js';
import { UnauthenticatedError } from '../errors.js';

/** Throws UNAUTHENTICATED unless `now` (ms since epoch, wall time as TLS uses) is within the identity's certificate's validity period. */
export function checkCertificateValidity(peer: Pick<CertIdentity, 'validFromMs' | 'validToMs'>, now: number = Date.now()): void {
  // An unreadable date is NaN, and every comparison with NaN fails the check.
  if (now >= peer.validFromMs && now <= peer.validToMs) return;
  throw new UnauthenticatedError(
    now > peer.validToMs
      ? 'the client certificate has expired since this connection was made; reconnect with a renewed certificate'
      : 'the client certificate is not valid yet; check the clocks, then reconnect',
    { rule: 'certificate_validity' },
  );
}
