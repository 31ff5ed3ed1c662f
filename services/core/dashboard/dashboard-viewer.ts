/**
 * Who may look at the dashboard. A request is let in with a session cookie
 * from a one-time link, or with a client certificate that TLS verified
 * against the CAs the service's gRPC server trusts (its domain's and peered
 * domains'), whose URN its CA vouches for (the same CA-domain check), and
 * whose principal the role admits (its administrators). Anything else is
 * refused with the reason.
 */
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { identityFromCertificate, type CertIdentity } from '../identity/certificate.js';
import type { TransportTrust } from '../rpc/trust.js';
import type { DashboardLogins } from './dashboard-logins.js';
import type { DashboardSource } from './dashboard-source.js';
import type { Viewer } from './pages/layout.js';

/** The session cookie (`__Host-`: Secure, path /, no domain: only this origin ever gets it). */
export const SESSION_COOKIE = '__Host-fedlab-dashboard';

/** Let in, or refused and why. */
export type Admission = { readonly viewer: Viewer } | { readonly refused: string };

/** What {@link admit} checks against. */
export interface AdmissionDeps {
  readonly logins: DashboardLogins;
  readonly trust: Pick<TransportTrust, 'checkClient'>;
  readonly source: Pick<DashboardSource, 'refusal'>;
}

// A connection's certificate does not change (no renegotiation): its identity is read once.
const identities = new WeakMap<TLSSocket, Promise<CertIdentity | { readonly error: string }>>();

function identityOf(socket: TLSSocket): Promise<CertIdentity | { readonly error: string }> | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert?.raw || cert.raw.length === 0) return undefined;
  let found = identities.get(socket);
  if (!found) {
    found = identityFromCertificate(new X509Certificate(cert.raw)).catch((err: unknown) => ({ error: (err as Error).message }));
    identities.set(socket, found);
  }
  return found;
}

/** Decides about one request: its TLS socket and the session id of its cookie, if any. */
export async function admit(socket: TLSSocket, sessionId: string | undefined, deps: AdmissionDeps): Promise<Admission> {
  if (deps.logins.session(sessionId)) return { viewer: { who: 'one-time link', via: 'one-time link' } };
  const pending = identityOf(socket);
  if (!pending) return { refused: 'You are not logged in, and your browser sent no client certificate.' };
  if (!socket.authorized) {
    return {
      refused: `Your client certificate is not trusted here (${String(socket.authorizationError ?? 'unknown CA')}): it must be issued by this domain's CA or a peered domain's.`,
    };
  }
  const identity = await pending;
  if ('error' in identity) return { refused: `Your client certificate cannot be used: ${identity.error}` };
  try {
    deps.trust.checkClient(identity);
  } catch (err) {
    return { refused: `Your client certificate is refused: ${(err as Error).message}` };
  }
  const why = deps.source.refusal({ urn: identity.urn, thumbprint: identity.thumbprint });
  if (why) return { refused: why };
  return { viewer: { who: identity.urn, via: 'client certificate' } };
}
