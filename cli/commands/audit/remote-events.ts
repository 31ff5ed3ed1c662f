/**
 * `fedlab audit ls` against a running service: Admin.ListEvents, page after
 * page, until the records asked for are in or the log is walked to its
 * oldest record. A page may be empty (the service bounds the records one
 * call examines) and still carry a token: the walk goes on.
 */
import type { AuditRecord } from '../../../services/core/audit/audit-chain.js';
import type { AdminClient } from '../../../services/core/admin/snapshot-client.js';
import type { AuditEvent } from '../../../services/generated/fedlab/v1/admin.js';

/** The filter flags as the request carries them. */
export interface RemoteFilter {
  readonly since?: Date;
  readonly until?: Date;
  readonly caller?: string;
  readonly object?: string;
  readonly method?: string;
}

/** The largest page the service returns. */
const MAX_PAGE = 1000;

/** An event as the audit log stores it (time in milliseconds), so both modes print alike. */
function recordOf(e: AuditEvent): AuditRecord {
  return {
    seq: e.seq,
    time: e.time ? e.time.getTime() : 0,
    method: e.method,
    caller: e.caller,
    jtis: e.jtis,
    object: e.object,
    outcome: e.outcome,
    rule: e.rule,
    prev: e.prev,
    hash: e.hash,
  };
}

/** Up to `limit` events matching `filter`, newest first. */
export async function listRemoteEvents(client: AdminClient, filter: RemoteFilter, limit: number): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let pageToken = '';
  do {
    const res = await client.listEvents({
      pageSize: Math.min(limit - out.length, MAX_PAGE),
      pageToken,
      ...(filter.since ? { since: filter.since } : {}),
      ...(filter.until ? { until: filter.until } : {}),
      caller: filter.caller ?? '',
      object: filter.object ?? '',
      method: filter.method ?? '',
    });
    for (const e of res.events) out.push(recordOf(e));
    pageToken = res.nextPageToken;
  } while (pageToken && out.length < limit);
  return out.slice(0, limit);
}
