/**
 * Querying the audit log (Admin.ListEvents): filters by time, caller,
 * object and method, newest first, paged with core's page tokens. Records
 * are kept in chain order, not by time or caller, so a filter is applied to
 * each record walked; to keep a call's cost bounded whatever the filters
 * match, one call examines at most `scanBudget` records and, when it stops
 * there, returns what it found (possibly nothing) with a token to go on.
 */
import { InvalidArgumentError } from '../errors.js';
import { decodePageToken, encodePageToken } from '../paging.js';
import type { Store, Table } from '../store/store.js';
import { pageSize, text } from '../validate.js';
import type { AuditRecord } from './audit-chain.js';
import { AUDIT_TABLE } from './audit-log.js';

/** The list name in ListEvents page tokens. */
export const EVENTS_LIST = 'audit-events';

/** Records one call examines at most, by default. */
export const DEFAULT_SCAN_BUDGET = 10_000;

/** Longest filter strings accepted (the log keeps objects to 512 characters; URNs and paths are shorter). */
export const FILTER_LIMITS = { caller: 512, object: 512, method: 256 } as const;

/** A checked ListEvents filter; absent fields match everything. */
export interface EventFilter {
  /** At or after, milliseconds since the epoch. */
  readonly since?: number;
  /** Before, milliseconds since the epoch. */
  readonly until?: number;
  readonly caller?: string;
  readonly object?: string;
  /** A full path (`/fedlab.v1.Aggregate/Allocate`) or a bare method name (`Allocate`). */
  readonly method?: string;
}

/** A filter as the request carries it (empty strings and absent times: no filter). */
export interface EventFilterRequest {
  readonly since?: Date | undefined;
  readonly until?: Date | undefined;
  readonly caller: string;
  readonly object: string;
  readonly method: string;
}

const METHOD_PATH = /^\/[A-Za-z_][A-Za-z0-9_.]*\/[A-Za-z_][A-Za-z0-9_]*$/;
const METHOD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KEY = /^\d{16}$/;

function timeField(field: string, value: Date | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value.getTime();
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(`${field} is not a valid time`, { field });
  return ms;
}

/** Checks a request's filter: each bad field is INVALID_ARGUMENT naming it. */
export function eventFilter(req: EventFilterRequest): EventFilter {
  const since = timeField('since', req.since);
  const until = timeField('until', req.until);
  if (since !== undefined && until !== undefined && until <= since)
    throw new InvalidArgumentError('until must be later than since', { field: 'until' });
  const caller = text('caller', req.caller, FILTER_LIMITS.caller);
  const object = text('object', req.object, FILTER_LIMITS.object);
  const method = text('method', req.method, FILTER_LIMITS.method);
  if (method && !METHOD_PATH.test(method) && !METHOD_NAME.test(method))
    throw new InvalidArgumentError('method must be a method name (Allocate) or a full path (/fedlab.v1.Aggregate/Allocate)', {
      field: 'method',
    });
  return {
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
    ...(caller ? { caller } : {}),
    ...(object ? { object } : {}),
    ...(method ? { method } : {}),
  };
}

/** Whether record `r` passes filter `f`. */
export function matchesFilter(r: AuditRecord, f: EventFilter): boolean {
  if (f.since !== undefined && !(r.time >= f.since)) return false;
  if (f.until !== undefined && !(r.time < f.until)) return false;
  if (f.caller !== undefined && r.caller !== f.caller) return false;
  if (f.object !== undefined && r.object !== f.object) return false;
  if (f.method !== undefined) {
    const path = typeof r.method === 'string' ? r.method : '';
    if (f.method.startsWith('/') ? path !== f.method : !path.endsWith(`/${f.method}`)) return false;
  }
  return true;
}

/** One page of events. */
export interface EventPage {
  /** Newest first. */
  readonly records: readonly AuditRecord[];
  /** '' when the walk reached the oldest record kept. */
  readonly nextPageToken: string;
}

/** Reads pages of a store's audit log. */
export class AuditQuery {
  private readonly table: Table<AuditRecord>;
  private readonly scanBudget: number;

  constructor(store: Store, options: { readonly scanBudget?: number } = {}) {
    this.table = store.table<AuditRecord>(AUDIT_TABLE);
    this.scanBudget = Math.max(1, options.scanBudget ?? DEFAULT_SCAN_BUDGET);
  }

  /**
   * The page after `pageToken` (newest first): at most `requestedSize` records (0: the default
   * page size), found among at most the scan budget of records walked.
   */
  async page(filter: EventFilter, requestedSize: number, pageToken: string): Promise<EventPage> {
    const size = pageSize(requestedSize);
    const before = decodePageToken(EVENTS_LIST, pageToken);
    if (before !== '' && !KEY.test(before))
      throw new InvalidArgumentError('page_token is not one this server gave out for this list; start again with an empty token', {
        field: 'page_token',
      });
    const records: AuditRecord[] = [];
    let examined = 0;
    let lastKey = '';
    for await (const [key, value] of this.table.entries({ reverse: true, limit: this.scanBudget, ...(before ? { lt: before } : {}) })) {
      examined++;
      lastKey = key;
      // A record edited into something that is not one (the chain's verify names it) is skipped here.
      if (typeof value === 'object' && value !== null && matchesFilter(value, filter)) {
        records.push(value);
        if (records.length >= size) break;
      }
    }
    const stoppedEarly = records.length >= size || examined >= this.scanBudget;
    const more = stoppedEarly && lastKey !== '' && (await this.anyBefore(lastKey));
    return { records, nextPageToken: more ? encodePageToken(EVENTS_LIST, lastKey) : '' };
  }

  private async anyBefore(key: string): Promise<boolean> {
    for await (const _ of this.table.entries({ reverse: true, lt: key, limit: 1 })) return true;
    return false;
  }
}
