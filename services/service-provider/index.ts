/**
 * Building the service provider role for `fedlab serve sp`: the provider's
 * key (its TLS key, which also signs its terms statements and member
 * credentials), its clients, site registrations, slice credentials,
 * deployments (resumed from the store before the first call), members and the
 * member intents still owed to the slice authority (retried from the start).
 * Stopping stops those retries, supervision (cancelling the Exec calls) and registration,
 * and closes the channels; the host then closes the store.
 */
import type { RoleDeps, RoleServices } from '../core/host.js';
import { signingKeyOf } from '../core/identity/signing-key.js';
import { registerSpMetrics } from './sp-metrics.js';
import { Access } from './access.js';
import { systemClock, type Clock } from '../core/clock.js';
import { toSpSettings, type SpConfig } from './config.js';
import { Deployments } from './deployments/deployments.js';
import { MemberIntents } from './member-intents.js';
import { Members } from './members.js';
import { Registrations } from './registrations.js';
import { Remotes } from './remotes.js';
import { serviceProviderService } from './service.js';
import { SliceCredentials } from './slice-credentials.js';

export { spConfigSchema, SP_PATH_FIELDS, toSpSettings, type SpConfig, type SpSettings } from './config.js';

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
  return async ({ config, store, tls, log, federation, metrics }) => {
    const clock = options.clock ?? systemClock;
    const settings = toSpSettings(config);
    const { key, kid, self } = await signingKeyOf(tls, settings.urn, 'this provider');
    // The provider's own certificate alone (tls.cert may carry a chain after it).
    const certificatePem = self.certificate.toString();

    const remotes = new Remotes({ tls, trust: federation, ...settings.remotes });
    const registrations = new Registrations({ store, clock, log, remotes, certificatePem, key, kid, ...settings.registrations });
    const credentials = new SliceCredentials({ store, clock, log, remotes, certificatePem, ...settings.sliceCredentials });
    const deployments = new Deployments({ store, clock, log, remotes, credentials, ...settings.deployments });
    if (metrics) registerSpMetrics(metrics, deployments);
    const intents = new MemberIntents({ store, clock, log, remotes, ...settings.memberIntents });
    const members = new Members({
      store,
      clock,
      log,
      credentials,
      intents,
      key,
      ...settings.members,
      ownsSlice: (slice) => deployments.ownsSlice(slice),
    });
    const access = new Access(settings.access.admins, settings.access.readers);

    const resumed = await deployments.start();
    registrations.start();
    intents.start();
    log.info(
      { sites: settings.deployments.sites.length, sliceAuthority: settings.deployments.sliceAuthorityUrn, ...resumed },
      'service provider ready',
    );
    options.onBuilt?.({ urn: settings.urn, deployments, members, registrations, credentials });
    return {
      registrations: [serviceProviderService({ access, deployments, members })],
      onStop: async () => {
        await intents.stop();
        await registrations.stop();
        await deployments.stop();
        remotes.close();
      },
    };
  };
}

/** The service provider role with default options (for `fedlab serve sp`). */
export const buildServiceProvider = serviceProviderRole();
