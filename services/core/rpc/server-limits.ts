/**
 * What one server accepts, so that no caller can make it hold unbounded
 * memory or work: message sizes (per method where one needs more), streams
 * per HTTP/2 connection, open server streams per caller, keepalive, idle
 * and old connections. Compiled once from config with safe defaults; docs/api.md
 * lists them.
 */
import { ResourceExhaustedError } from '../errors.js';

/** Fully resolved limits of one server. */
export interface ServerLimits {
  /** Largest request message accepted, bytes (unless `methodReceiveBytes` names the method). */
  readonly maxReceiveBytes: number;
  /** Per-method exceptions to `maxReceiveBytes`, keyed by the method's path. */
  readonly methodReceiveBytes: Readonly<Record<string, number>>;
  /** Largest response message sent, bytes. */
  readonly maxSendBytes: number;
  /** Concurrent streams (calls) on one HTTP/2 connection. */
  readonly maxConcurrentStreams: number;
  /** Server-streaming calls one caller (by URN) may hold open at once on this server. */
  readonly maxStreamsPerCaller: number;
  /** A connection with no call for this long is closed. */
  readonly maxConnectionIdleMs: number;
  /**
   * A connection this old is asked to go away (GOAWAY: its calls in flight finish, new ones take a new
   * connection, with a new handshake). Defence in depth: certificates are checked on every call anyway.
   */
  readonly maxConnectionAgeMs: number;
  /** Ping interval and how long a ping may go unanswered before the connection is dropped. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
}

const MiB = 1024 * 1024;

/**
 * Methods whose requests may be larger than 1 MiB: a command's stdin is up to 1 MiB on its own; a
 * revocation list and a request document for thousands of nodes are larger still.
 */
const LARGER_REQUESTS: Readonly<Record<string, number>> = Object.freeze({
  '/fedlab.v1.NodeManager/Exec': 2 * MiB,
  '/fedlab.v1.ServiceProvider/Deploy': 2 * MiB,
  '/fedlab.v1.NodeManager/UpdateRevocations': 16 * MiB,
  '/fedlab.v1.Aggregate/UpdateRevocations': 16 * MiB,
  '/fedlab.v1.Aggregate/Allocate': 8 * MiB,
  '/fedlab.v1.SliceAuthority/CreateSlice': 8 * MiB,
});

/**
 * Methods whose requests are much smaller than 1 MiB and arrive often: a heartbeat is a few hundred
 * bytes (a long image list a few KiB), so 64 KiB is ample, and a node cannot make the MA parse and
 * drop a mebibyte of unknown fields several times a second.
 */
const SMALLER_REQUESTS: Readonly<Record<string, number>> = Object.freeze({
  '/fedlab.v1.ManagementAuthority/Heartbeat': 64 * 1024,
  '/fedlab.v1.ManagementAuthority/HeartbeatStream': 64 * 1024,
});

/** The defaults: small messages, a few dozen streams, idle connections closed after 10 minutes. */
export const DEFAULT_SERVER_LIMITS: ServerLimits = Object.freeze({
  maxReceiveBytes: MiB,
  methodReceiveBytes: Object.freeze({ ...LARGER_REQUESTS, ...SMALLER_REQUESTS }),
  maxSendBytes: 16 * MiB,
  maxConcurrentStreams: 128,
  maxStreamsPerCaller: 32,
  maxConnectionIdleMs: 10 * 60_000,
  // Hours: each re-handshake costs a busy MA a TLS handshake per node, and expiry is checked per call already.
  maxConnectionAgeMs: 6 * 3600_000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
});

/** Resolves partial limits over the defaults. */
export function resolveServerLimits(partial: Partial<ServerLimits> = {}): ServerLimits {
  return Object.freeze({
    ...DEFAULT_SERVER_LIMITS,
    ...partial,
    methodReceiveBytes: Object.freeze({ ...DEFAULT_SERVER_LIMITS.methodReceiveBytes, ...partial.methodReceiveBytes }),
  });
}

/** grpc-js server options for `limits` (the transport enforces the largest per-method size; the adapter the rest). */
export function grpcServerOptions(limits: ServerLimits): Record<string, number> {
  const largest = Math.max(limits.maxReceiveBytes, ...Object.values(limits.methodReceiveBytes));
  return {
    'grpc.max_receive_message_length': largest,
    'grpc.max_send_message_length': limits.maxSendBytes,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.max_connection_idle_ms': limits.maxConnectionIdleMs,
    'grpc.max_connection_age_ms': limits.maxConnectionAgeMs,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
  };
}

/** Counts open streams per caller and refuses one past the cap. */
export class StreamQuota {
  private readonly open = new Map<string, number>();

  constructor(private readonly cap: number) {}

  /** Takes a slot for `caller`; the returned function gives it back (once). */
  acquire(caller: string, method: string): () => void {
    const n = this.open.get(caller) ?? 0;
    if (n >= this.cap) {
      throw new ResourceExhaustedError(
        `${caller} already holds ${n} open streams on this server, the most allowed (limits: ${this.cap} per caller); close one before opening ${method}`,
        {
          limit: 'streams_per_caller',
        },
      );
    }
    this.open.set(caller, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(caller) ?? 1) - 1;
      if (left <= 0) this.open.delete(caller);
      else this.open.set(caller, left);
    };
  }
}
