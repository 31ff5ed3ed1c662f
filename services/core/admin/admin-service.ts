/**
 * The `Admin` service every role serves: Snapshot streams the service's store
 * as of one LevelDB snapshot (a consistent online backup, or a few tables for
 * `fedlab federation check`); ListEvents pages through its audit log. Only the service itself (a caller presenting
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
import { AdminService, type AuditEvent, type SnapshotResponse } from '../../generated/fedlab/v1/admin.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SnapshotDigest } from './snapshot-digest.js';
import { AuditQuery, eventFilter } from '../audit/audit-query.js';
import type { AuditRecord } from '../audit/audit-chain.js';
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

/** A stored record on the wire; a field edited into the wrong type is sent empty (verify names the record). */
function auditEventOf(r: AuditRecord): AuditEvent {
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const time = typeof r.time === 'number' && Number.isFinite(r.time) ? new Date(r.time) : undefined;
  return {
    seq: typeof r.seq === 'number' && Number.isSafeInteger(r.seq) && r.seq >= 0 ? r.seq : 0,
    ...(time ? { time } : {}),
    method: str(r.method),
    caller: str(r.caller),
    jtis: Array.isArray(r.jtis) ? r.jtis.map(str) : [],
    object: str(r.object),
    outcome: str(r.outcome),
    rule: str(r.rule),
    prev: str(r.prev),
    hash: str(r.hash),
  };
}

/** The Admin registration of one service. */
export function adminService(deps: AdminServiceDeps): ServiceRegistration {
  const admins = new Set(Array.isArray(deps.config.admins) ? deps.config.admins : []);
  // The service's own key, to recognise a caller that is the service itself (same URN, same key).
  const own = describePublicKey(createPrivateKey(deps.tls.key)).then((k) => k.thumbprint);
  const version = softwareVersion();
  const events = new AuditQuery(deps.store);

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
    async listEvents(req, ctx) {
      await authorize(ctx);
      const page = await events.page(eventFilter(req), req.pageSize, req.pageToken);
      return { events: page.records.map(auditEventOf), nextPageToken: page.nextPageToken };
    },
  });
}
