/**
 * HPACK dynamic tables large enough for credential chains.
 *
 * Every authenticated call carries its chain in `fedlab-credential` metadata, one header per link
 * (about 0.9 KB each). HTTP/2 compresses headers with HPACK, whose dynamic table is 4 KiB unless
 * both ends raise it: the receiver's SETTINGS_HEADER_TABLE_SIZE and the sender's own deflate limit
 * (nghttp2's, 4 KiB by default). A 4-link chain plus gRPC's own headers does not fit, and every
 * call's new `grpc-timeout` value evicts the oldest entry — a link — so links were sent in full and
 * decoded again on almost every call: bench:rpc measured 35 µs more server CPU per call for a
 * 4-link chain than for a 1-link one, and none once the tables were raised.
 *
 * grpc-js (1.14) has no option for either size (gRPC C-core has
 * `grpc.http2.hpack_table_size.{decoder,encoder}`), and builds its HTTP/2 sessions with
 * `http2.connect` and `http2.createSecureServer` of Node's module, looked up at each use. So this
 * module wraps those two functions once, adding only the two sizes to the options grpc-js passes:
 * servers advertise a {@link HPACK_TABLE_BYTES} decoder table, clients may use an encoder table of
 * that size. Nothing else changes; what a peer may send is still bounded by the server's limits
 * (metadata size, session memory). Cost: at most 16 KiB more per connection, on each side, filled
 * only as headers repeat. Revisit on a grpc-js upgrade (test/unit/hpack-table.test.ts checks the
 * wrapping still reaches grpc-js's sessions).
 */
import http2 from 'node:http2';

/** Size of the HPACK dynamic table for headers sent to a Fedlab server (bytes). */
export const HPACK_TABLE_BYTES = 16_384;

let installed = false;
const uses = { connects: 0, servers: 0 };

type Connect = typeof http2.connect;
type CreateSecureServer = typeof http2.createSecureServer;

/** Raises the HPACK tables of every HTTP/2 session made from now on in this process (idempotent). */
export function installHpackTables(): void {
  if (installed) return;
  installed = true;
  const mod = http2 as { connect: Connect; createSecureServer: CreateSecureServer };
  const connect = mod.connect;
  const createSecureServer = mod.createSecureServer;
  mod.connect = function (this: unknown, authority: unknown, options?: unknown, listener?: unknown) {
    if (typeof options === 'function') [options, listener] = [{}, options];
    const o = (options ?? {}) as http2.SecureClientSessionOptions;
    uses.connects++;
    const raised = { ...o, maxDeflateDynamicTableSize: Math.max(o.maxDeflateDynamicTableSize ?? 0, HPACK_TABLE_BYTES) };
    return (connect as (...a: unknown[]) => http2.ClientHttp2Session).call(this, authority, raised, listener);
  } as Connect;
  mod.createSecureServer = function (this: unknown, options?: unknown, onRequest?: unknown) {
    if (typeof options === 'function') [options, onRequest] = [{}, options];
    const o = (options ?? {}) as http2.SecureServerOptions;
    uses.servers++;
    const settings = { ...o.settings, headerTableSize: Math.max(o.settings?.headerTableSize ?? 0, HPACK_TABLE_BYTES) };
    return (createSecureServer as (...a: unknown[]) => http2.Http2SecureServer).call(this, { ...o, settings }, onRequest);
  } as CreateSecureServer;
}

/** How many sessions and servers were made through the wrapped functions (tests). */
export function hpackTableUses(): { readonly connects: number; readonly servers: number } {
  return { ...uses };
}
