/**
 * The `Admin` service every role serves: Snapshot streams the service's store
 * as of one LevelDB snapshot (a consistent online backup, or a few tables for
 * `fedlab federation check`). Only the service itself (a caller presenting
 * the service's own URN and key, which is what `fedlab backup --config FILE`
 * does with the config's TLS files) and the administrators its config lists
 * may call it; the store holds everything the service knows.
 */
import { createPrivateKey } from 'node:crypto';
import type { CommonConfig } from '../config.js';
import { PermissionDeniedError } from '../errors.js';
import { describePublicKey } from '../identity/keys.js';
import { packageRoot } from '../paths.js';
import { defineService, type ServiceRegistration } from '../rpc/adapter.js';
import type { CallContext } from '../rpc/context.js';
import type { TlsMaterial } from '../rpc/server.js';
import type { Store } from '../store/store.js';
import { AdminService, type SnapshotResponse } from '../../generated/fedlab/v1/admin.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SnapshotDigest } from './snapshot-digest.js';
import { openStoreSnapshot, tableRange } from './store-snapshot.js';

/** What the Admin service is built from. */
export interface AdminServiceDeps {
  readonly config: Readonly<CommonConfig & { admins?: readonly string[] }>;
  readonly store: Store;
  readonly tls: TlsMaterial;
}

/** The Fedlab software version (package.json), for snapshot headers. */
function softwareVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The Admin registration of one service. */
export function adminService(deps: AdminServiceDeps): ServiceRegistration {
  const admins = new Set(Array.isArray(deps.config.admins) ? deps.config.admins : []);
  // The service's own key, to recognise a caller that is the service itself (same URN, same key).
  const own = describePublicKey(createPrivateKey(deps.tls.key)).then((k) => k.thumbprint);
  const version = softwareVersion();

  const authorize = async (ctx: CallContext): Promise<void> => {
    if (admins.has(ctx.peer.urn)) return;
    if (ctx.peer.urn === deps.config.urn && ctx.peer.thumbprint === (await own)) return;
    throw new PermissionDeniedError(
      `only ${deps.config.urn} itself (its own certificate and key, as \`fedlab backup --config\` uses them) and its administrators (admins in its config) may read its store; ${ctx.peer.urn} is neither`,
      { rule: 'admin' },
    );
  };

  return defineService(AdminService, {
    async *snapshot(req, ctx): AsyncGenerator<SnapshotResponse> {
      await authorize(ctx);
      // Bad table names are refused before anything is sent.
      for (const t of req.tables) tableRange(t);
      const digest = new SnapshotDigest();
      const snapshot = await openStoreSnapshot(deps.store);
      try {
        yield {
          part: {
            $case: 'header',
            header: {
              serviceUrn: deps.config.urn,
              role: deps.config.role,
              takenAt: new Date(snapshot.takenAt),
              tables: [...req.tables],
              softwareVersion: version,
            },
          },
        };
        for await (const run of snapshot.runs(req.tables, ctx.signal)) {
          for (const e of run) digest.add(e);
          yield { part: { $case: 'entries', entries: { entries: run } } };
        }
      } finally {
        await snapshot.close();
      }
      ctx.log.info({ entries: digest.count, tables: req.tables.length ? req.tables : 'all' }, 'store snapshot sent');
      yield { part: { $case: 'trailer', trailer: { entryCount: digest.count, digest: digest.digest() } } };
    },
    async listEvents(_req, ctx) {
      await authorize(ctx);
      // Wire method added with its RPC; the handler lands with its implementation this session.
      throw new PermissionDeniedError('ListEvents is not served yet');
    },
  });
}
