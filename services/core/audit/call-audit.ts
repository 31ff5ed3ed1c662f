/**
 * Which calls the audit log records, and what of each: every method that can
 * change state (not the reads, and not Heartbeat or HeartbeatStream, whose rate would drown the
 * log — a node's health changes are in the MA's own log lines), the caller,
 * the `jti` of each link of its credential chain, and the object it names.
 */
import type { CallContext } from '../rpc/context.js';
import type { AuditLog } from './audit-log.js';

const READS = /^(Get|List|Describe|Status|Watch)/;
const NOT_AUDITED = new Set(['Heartbeat', 'HeartbeatStream', 'GetBundle', 'Snapshot', 'UpdateRevocations']);

/** Whether calls of `method` (a full path) are recorded. */
export function isAudited(method: string): boolean {
  const name = method.split('/').pop() ?? '';
  return !READS.test(name) && !NOT_AUDITED.has(name);
}

const OBJECT_FIELDS = ['sliceUrn', 'sliverUrn', 'urn', 'nodeUrn', 'nodeName', 'name', 'sliceAuthorityUrn', 'memberUrn', 'jti'] as const;

/** The object a request names: its first URN or name field, or the first of its `urns`. */
export function objectOf(request: unknown): string {
  if (typeof request !== 'object' || request === null) return '';
  const r = request as Record<string, unknown>;
  for (const f of OBJECT_FIELDS) if (typeof r[f] === 'string' && r[f]) return (r[f] as string).slice(0, 512);
  if (Array.isArray(r.urns) && typeof r.urns[0] === 'string') return (r.urns[0] as string).slice(0, 512);
  return '';
}

/** The `jti` of each link of a chain (compact JWS), root first; '' for a link that does not decode. */
export function jtisOf(chain: readonly string[]): string[] {
  return chain.map((link) => {
    try {
      const payload = JSON.parse(Buffer.from(link.split('.')[1] ?? '', 'base64url').toString()) as { jti?: unknown };
      return typeof payload.jti === 'string' ? payload.jti.slice(0, 128) : '';
    } catch {
      return '';
    }
  });
}

/** The adapter's view of the audit log: begin a call once its caller is known, finish it with its code. */
export class CallAudit {
  // A server's methods are a closed set: whether each is audited is worked out once.
  private readonly audited = new Map<string, boolean>();

  constructor(private readonly log: AuditLog) {}

  /** Whether calls of `method` are recorded (remembered per method). */
  audits(method: string): boolean {
    let yes = this.audited.get(method);
    if (yes === undefined) {
      yes = isAudited(method);
      if (this.audited.size < 4096) this.audited.set(method, yes);
    }
    return yes;
  }

  begin(ctx: Pick<CallContext, 'method' | 'peer' | 'chain' | 'signal'>, request: unknown): void {
    if (!this.audits(ctx.method)) return;
    this.log.begin(ctx.signal, { method: ctx.method, caller: ctx.peer.urn, jtis: jtisOf(ctx.chain), object: objectOf(request) });
  }

  /** Ends a call of an audited method; calls of other methods need not finish. */
  finish(signal: AbortSignal, code: string, rule?: string): Promise<void> {
    return this.log.finish(signal, code, rule);
  }
}
