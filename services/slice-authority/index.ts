/**
 * Building the slice authority role for `fedlab serve sa`: its key (the TLS
 * key, which also signs slice credentials and must hold every site's
 * `MA → SA` chain), the sites and their Aggregate clients, provider accounts,
 * the revocation list, the slice books; recovery of unfinished intents before
 * the first call; the background tasks (expiry sweeper, intent retries).
 */
import { RevocationStore, revocationSettings } from '../core/credentials/index.js';
import type { RoleDeps, RoleServices } from '../core/host.js';
import { signingKeyOf } from '../core/identity/signing-key.js';
import { registerSaMetrics } from './sa-metrics.js';
import { Accounts } from './accounts.js';
import { toSaSettings, type SaConfig } from './config.js';
import { SliceCredentials } from './credentials.js';
import { EventHub } from './events.js';
import { sliceAuthorityService } from './service.js';
import { Sites } from './sites.js';
import { RevocationPush } from './revocation-push.js';
import { SliceBook } from './slices/slice-book.js';
import { backgroundTasks } from './background-tasks.js';
import { SaDashboardSource } from './dashboard-source.js';

export { saConfigSchema, SA_PATH_FIELDS, toSaSettings, type SaConfig, type SaSettings } from './config.js';

/** The built slice authority (tests reach its parts through this). */
export interface SliceAuthority {
  readonly urn: string;
  readonly book: SliceBook;
  readonly sites: Sites;
  readonly credentials: SliceCredentials;
  readonly recovery: { readonly rolledBack: number; readonly finished: number; readonly pending: number };
  /** Runs the expiry sweep now. */
  sweep(): Promise<number>;
}

/** Options of {@link sliceAuthorityRole}. */
export interface SaRoleOptions {
  /** The clock (ms since the epoch). */
  readonly now?: () => number;
  /** Do not start the background timers (tests run sweeps by hand). */
  readonly manualTimers?: boolean;
  readonly onBuilt?: (sa: SliceAuthority) => void;
}

/** The slice authority role, for `hostService`. */
export function sliceAuthorityRole(options: SaRoleOptions = {}): (deps: RoleDeps<SaConfig>) => Promise<RoleServices> {
  return async ({ config, store, tls, log, federation, metrics }) => {
    const now = options.now ?? Date.now;
    const settings = toSaSettings(config);
    const { key: saKey, jwk: saJwk, kid: saKid } = await signingKeyOf(tls, settings.urn, 'this slice authority');
    const saUrn = settings.urn;

    const bookForMetrics: { book?: SliceBook } = {};
    const observe = metrics ? registerSaMetrics(metrics, () => bookForMetrics.book) : undefined;
    const sites = Sites.load(settings.sites, {
      tls,
      trust: federation,
      self: { urn: saUrn, kid: saKid },
      deadlineMs: settings.siteDeadlineMs,
      now,
      log,
      ...(observe ? { observe } : {}),
    });
    const revocations = await RevocationStore.open(store);
    const push = new RevocationPush({
      sites,
      revocations,
      saKey,
      saUrn,
      saKid,
      deadlineMs: settings.siteDeadlineMs,
      settings: revocationSettings(config.revocation),
      now,
      log,
    });
    // Not awaited by Revoke: the entry is on the list (and served) already; reaching every node takes its own time.
    const credentials = new SliceCredentials({
      store,
      log,
      now,
      saUrn,
      saKey,
      saJwk,
      saKid,
      revocations,
      onRevoked: () => void push.push(),
      caps: settings.revocationCaps,
    });
    await credentials.load();
    const accounts = new Accounts(settings.providers, settings.admins, (t) => credentials.isKeyRevoked(t));
    const book = new SliceBook({ store, sites, accounts, hub: new EventHub(), log, now, ...settings.book });
    bookForMetrics.book = book;
    await book.load();

    let recovery;
    try {
      // Work the previous process left unfinished is settled before the first call is taken.
      recovery = await book.recover();
    } catch (err) {
      sites.close();
      throw err;
    }
    const tasks = backgroundTasks(book, push, settings.intervals, log, { credentials, settings, now });
    if (!options.manualTimers) for (const t of tasks) t.start();
    log.info(
      { sites: sites.domains(), providers: settings.providers.length, ...book.stats(), recovered: recovery },
      'slice authority ready',
    );
    options.onBuilt?.({ urn: saUrn, book, sites, credentials, recovery, sweep: () => book.sweep() });

    return {
      registrations: [sliceAuthorityService({ accounts, book, credentials })],
      dashboard: new SaDashboardSource({ urn: saUrn, accounts, book, sites }),
      onStop: async () => {
        for (const t of tasks) await t.stop();
        await book.stop();
        sites.close();
      },
    };
  };
}

/** The slice authority role with the system clock. */
export const buildSliceAuthority = sliceAuthorityRole();
