/**
 * Building the service provider role for `fedlab serve sp`: the provider's
 * key (its TLS key, which also signs its terms statements and member
 * credentials), its clients, site registrations, slice credentials,
 * deployments (resumed from the store before the first call) and members.
 * Stopping stops supervision (cancelling the Exec calls) and registration,
 * and closes the channels; the host then closes the store.
 */
import { createPublicKey } from 'node:crypto';
import { thumbprintOf, toPublicJwk } from '../core/credentials/index.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { RoleDeps, RoleServices } from '../core/host.js';
import { identityFromCertificate, parseCertificate } from '../core/identity/certificate.js';
import { parsePrivateKeyPem } from '../core/identity/keys.js';
import { Access } from './access.js';
import { systemClock, type Clock } from './clock.js';
import type { SpConfig } from './config.js';
import { Deployments } from './deployments.js';
import { Members } from './members.js';
import { Registrations } from './registrations.js';
import { Remotes } from './remotes.js';
import { serviceProviderService } from './service.js';
import { SliceCredentials } from './slice-credentials.js';

export { spConfigSchema, SP_PATH_FIELDS, type SpConfig } from './config.js';

/** The built service provider (tests reach its parts through this). */
export interface ServiceProvider {
  readonly urn: string;
  readonly deployments: Deployments;
  readonly members: Members;
  readonly registrations: Registrations;
  readonly credentials: SliceCredentials;
}

/** Options of {@link serviceProviderRole}. */
export interface SpRoleOptions {
  readonly clock?: Clock;
  readonly onBuilt?: (sp: ServiceProvider) => void;
}

/** The service provider role, for `hostService`. */
export function serviceProviderRole(options: SpRoleOptions = {}): (deps: RoleDeps<SpConfig>) => Promise<RoleServices> {
  return async ({ config, store, tls, log, federation }) => {
    const clock = options.clock ?? systemClock;
    const key = parsePrivateKeyPem(tls.key, 'tls.key');
    const self = await identityFromCertificate(parseCertificate(tls.cert, 'tls.cert'));
    if (self.urn !== config.urn) throw new InvalidArgumentError(`tls.cert names ${self.urn}, but this provider is ${config.urn}`);
    if (!createPublicKey(key).equals(self.certificate.publicKey)) throw new InvalidArgumentError('tls.key is not the key of tls.cert');
    const kid = thumbprintOf(toPublicJwk(key));
    // The provider's own certificate alone (tls.cert may carry a chain after it).
    const certificatePem = self.certificate.toString();

    const remotes = new Remotes({
      tls,
      trust: federation,
      sliceAuthority: config.slice_authority,
      deadlines: { ma: config.calls.ma_deadline_ms, sa: config.calls.sa_deadline_ms, nm: config.calls.nm_deadline_ms },
    });
    const sites = config.sites.map((s) => ({ domain: s.domain, maUrn: s.ma_urn, endpoint: s.endpoint, acceptTermsDigest: s.accept_terms_digest }));
    const registrations = new Registrations({
      store,
      clock,
      log,
      remotes,
      providerUrn: config.urn,
      certificatePem,
      key,
      kid,
      contact: config.contact,
      sites,
      retryMs: config.registration.retry_ms,
      maxRetryMs: config.registration.max_retry_ms,
      refreshMs: config.registration.refresh_ms,
      deadlineMs: config.calls.ma_deadline_ms,
    });
    const credentials = new SliceCredentials({
      store,
      clock,
      log,
      remotes,
      certificatePem,
      ttlS: config.slice_credential_ttl_s,
      deadlineMs: config.calls.sa_deadline_ms,
    });
    const s = config.supervision;
    const deployments = new Deployments({
      store,
      clock,
      log,
      remotes,
      credentials,
      sliceAuthorityUrn: config.slice_authority.urn,
      sites,
      supervision: {
        backoffInitialMs: s.backoff_initial_ms,
        backoffMaxMs: s.backoff_max_ms,
        backoffResetMs: s.backoff_reset_ms,
        outputLines: s.output_lines,
        execTimeoutMs: s.exec_timeout_ms,
        retryMs: s.retry_ms,
      },
      sliceDeadlineMs: config.calls.slice_deadline_ms,
      maDeadlineMs: config.calls.ma_deadline_ms,
    });
    const members = new Members({
      store,
      clock,
      log,
      credentials,
      key,
      providerUrn: config.urn,
      defaultPrivileges: config.members.default_privileges,
      defaultTtlS: config.members.default_ttl_s,
      maxTtlS: config.members.max_ttl_s,
      ownsSlice: (slice) => deployments.ownsSlice(slice),
    });
    const access = new Access(config.admins, config.readers);

    const resumed = await deployments.start();
    registrations.start();
    log.info({ sites: sites.length, sliceAuthority: config.slice_authority.urn, ...resumed }, 'service provider ready');
    options.onBuilt?.({ urn: config.urn, deployments, members, registrations, credentials });
    return {
      registrations: [serviceProviderService({ access, deployments, members })],
      onStop: async () => {
        await registrations.stop();
        await deployments.stop();
        remotes.close();
      },
    };
  };
}

/** The service provider role with default options (for `fedlab serve sp`). */
export const buildServiceProvider = serviceProviderRole();
