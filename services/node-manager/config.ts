/**
 * The node manager's configuration: the common service settings plus the
 * node's owner, driver, capacity, defaults, the owner's policy, exec bounds,
 * timers and the management authority to send heartbeats to. Compiled once by
 * `fedlab serve nm --config FILE` (unknown keys and bad values stop start-up
 * naming the field).
 */
import { z } from 'zod';
import { commonConfigSchema } from '../core/config.js';
import { isValidDomain, isUrn, parseTarget, parseUrn } from '../core/identity/urn.js';
import { networkConfigSchema } from './network/network-config.js';

const path = z.string().min(1, 'must be a non-empty path');
const positive = z.number().int().positive();
const ms = (min: number, max: number, dflt: number) => z.number().int().min(min).max(max).default(dflt);

function isUrnOfKind(kind: string) {
  return (s: string): boolean => isUrn(s) && parseUrn(s).kind === kind;
}

/** `host:port` with a port from 0 to 65535 (IPv6 hosts in brackets). */
export function isHostPort(s: string): boolean {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  return m !== null && Number(m[2]) <= 65_535;
}

function isTargetOrStar(s: string): boolean {
  if (s === '*') return true;
  try {
    parseTarget(s);
    return true;
  } catch {
    return false;
  }
}

/** Upper bounds no request may exceed, however large the node: anything above is a mistake, not a wish. */
export const ABSURD = {
  cpuMillis: 1_024_000,
  memMb: 16 * 1024 * 1024,
  diskMb: 1024 * 1024 * 1024,
  pids: 4_194_304,
  slivers: 100_000,
} as const;

/** Resource amounts of the node's capacity; each absent one is measured from the machine. */
const capacitySchema = z
  .object({
    cpu_millis: positive.max(ABSURD.cpuMillis).optional(),
    mem_mb: positive.max(ABSURD.memMb).optional(),
    disk_mb: positive.max(ABSURD.diskMb).optional(),
    pids: positive.max(ABSURD.pids).optional(),
    slivers: positive.max(ABSURD.slivers).optional(),
  })
  .strict();

/** The node manager's config. */
export const nmConfigSchema = commonConfigSchema
  .extend({
    /** The node's owner: its certificate's URN and key are the trust root of node-level credentials. */
    owner: z
      .object({
        /** PEM certificate of the owner (`urn:fedlab:<domain>:owner:<name>`), from the domain's CA. */
        certificate: path,
        /** Optional file with the owner → MA chain (one compact JWS per line), kept for enrolment. */
        credential: path.optional(),
      })
      .strict(),
    /** The management authority that manages the node. */
    management_authority: z
      .object({
        urn: z.string().refine(isUrnOfKind('authority'), 'must be an authority URN urn:fedlab:<domain>:authority:<name>'),
        /** host:port of its gRPC server; heartbeats go there when set. */
        address: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    /** Style of the node's site. */
    style: z.enum(['planetlab', 'emulab', 'protogeni']).default('planetlab'),
    /** The node is given whole to one slice at a time. */
    exclusive: z.boolean().default(false),
    /** host:port other parties dial to reach this node manager; listen.host:port by default. */
    endpoint: z.string().min(1).optional(),
    /** Sliver driver; `auto` picks container where root and cgroups allow, else process. */
    driver: z.enum(['auto', 'container', 'process', 'simulated']).default('auto'),
    container: z
      .object({
        /** Every container sliver has its own network namespace (loopback only) now; the key stays for older configs. */
        net_namespace: z.boolean().default(true),
        /** First host id of the slivers' user namespace ranges: sliver n's root is uid_base + n * 65536. */
        uid_base: z.number().int().min(1000).max(2_000_000_000).default(200_000),
        /** Most id ranges (so most container slivers at once); uid_base + id_ranges * 65536 must stay below 2^32. */
        id_ranges: z.number().int().min(1).max(30_000).default(1024),
        /** Let slivers' ids fall below 100000 or on host accounts, groups or other users' /etc/subuid ranges (refused by default). */
        allow_host_ids: z.boolean().default(false),
        start_timeout_ms: ms(100, 120_000, 10_000),
        /** runc's absolute path; found in /usr/bin, /usr/sbin, /usr/local/bin when absent. */
        runc: z.string().startsWith('/', 'must be an absolute path').optional(),
        /** umoci's absolute path (unpacks OCI images). */
        umoci: z.string().startsWith('/', 'must be an absolute path').default('/usr/bin/umoci'),
        /** A static program run as each sliver's first process (busybox-static). */
        init: z.string().startsWith('/', 'must be an absolute path').default('/bin/busybox'),
        /** Open files of every sliver process: the hard limit cannot be raised from inside. */
        nofile_soft: z.number().int().min(64).max(1_048_576).default(1024),
        nofile_hard: z.number().int().min(64).max(1_048_576).default(4096),
      })
      .strict()
      .refine((c) => c.uid_base + c.id_ranges * 65_536 < 2 ** 32, {
        message: 'uid_base + id_ranges * 65536 must stay below 2^32',
        path: ['id_ranges'],
      })
      .refine((c) => c.nofile_soft <= c.nofile_hard, { message: 'nofile_soft must not exceed nofile_hard', path: ['nofile_soft'] })
      .prefault({}),
    /** Where the node owner places OCI image layouts (one directory per image, offered as oci:<directory>). */
    images_dir: path.optional(),
    /** What the node offers to slices; absent fields are measured from the machine. */
    capacity: capacitySchema.prefault({}),
    /** What a request's zero fields get, and lifetimes when none is asked for. */
    defaults: z
      .object({
        cpu_millis: positive.max(ABSURD.cpuMillis).default(250),
        mem_mb: positive.max(ABSURD.memMb).default(256),
        disk_mb: positive.max(ABSURD.diskMb).default(1024),
        pids: positive.max(ABSURD.pids).default(256),
        /** Lifetime of a provisioned sliver when the request names no expiry (s). */
        lifetime_s: positive.default(7 * 86_400),
        /** Allocation hold of an ALLOCATED sliver when the request names no expiry (s). */
        hold_s: positive.default(600),
      })
      .strict()
      .prefault({}),
    /** The owner's restrictions, on top of those in the owner → MA credential's `lim`. */
    policy: z
      .object({
        /** Slice-authority domains whose slices may have slivers here; `*` for any. */
        slice_authority_domains: z.array(z.string().refine((d) => d === '*' || isValidDomain(d), 'must be a domain or "*"')).default(['*']),
        /** Providers (URNs or target patterns such as urn:fedlab:acme.test:sp:*) whose slices may have slivers; `*` for any. */
        providers: z.array(z.string().refine(isTargetOrStar, 'must be a URN, a target pattern or "*"')).default(['*']),
        /** Images slices may use: names ("host", "oci:debian") or "*" for every image the node has. */
        images: z
          .array(
            z
              .string()
              .refine((i) => i === '*' || i === 'host' || /^oci:[a-z0-9][a-z0-9._-]{0,62}$/.test(i), 'must be "host", "oci:<name>" or "*"'),
          )
          .default(['*']),
        /** Longest a sliver may live (s); 8 weeks by default. */
        max_lifetime_s: positive.default(8 * 7 * 86_400),
        /** Most one slice may hold on this node. */
        per_slice: capacitySchema.omit({ pids: true }).prefault({}),
        /** Most SSH sessions one slice may have open on this node at once (lowers ssh.max_sessions_per_slice). */
        ssh_sessions_per_slice: z.number().int().min(1).max(1024).optional(),
      })
      .strict()
      .prefault({}),
    exec: z
      .object({
        default_timeout_ms: ms(100, 86_400_000, 60_000),
        max_timeout_ms: ms(100, 86_400_000, 3_600_000),
        /** Output (stdout + stderr) above this kills the command and fails the call. */
        max_output_bytes: z
          .number()
          .int()
          .min(1024)
          .max(1024 * 1024 * 1024)
          .default(16 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    /** SSH logins to slivers (docs/node-manager.md, "SSH"); absent: the node offers none. */
    ssh: z
      .object({
        /** host:port to listen on (port 0 picks a free one). */
        listen: z.string().refine(isHostPort, 'must be host:port (port 0 to 65535)'),
        /** host:port clients dial, as published in GetNodeInfo and manifests; the listen host and the bound port by default. */
        address: z.string().refine(isHostPort, 'must be host:port').optional(),
        /** The endpoint's Ed25519 host key (OpenSSH private key file); made at first start when absent. Default `<data_dir>/ssh_host_ed25519_key`. */
        host_key_file: path.optional(),
        /** Most concurrent sessions (shell, exec, sftp) of one slice on this node. */
        max_sessions_per_slice: z.number().int().min(1).max(1024).default(8),
        /** A connection with no traffic either way for this long is closed (s); 0: never. */
        idle_timeout_s: z
          .number()
          .int()
          .min(0)
          .max(7 * 86_400)
          .default(3600),
        /** Longest a connection may last (s); 0: no limit besides the sliver's own life. */
        max_session_s: z
          .number()
          .int()
          .min(0)
          .max(366 * 86_400)
          .default(0),
        /** Connections not yet authenticated at once; one more is closed as soon as it arrives. */
        max_unauthenticated: z.number().int().min(1).max(65_536).default(64),
        /** A client that has not completed the handshake and authenticated by then is dropped (ms). */
        handshake_timeout_ms: ms(100, 600_000, 10_000),
        /** Open port forwards (`ssh -L`) of one slice on this node; each runs a relay charged to the sliver. */
        max_forwards_per_slice: z.number().int().min(1).max(1024).default(16),
        /** Open channels (sessions and forwards) on one connection. */
        max_channels_per_connection: z.number().int().min(1).max(1024).default(16),
        /** Logged-in connections of one slice on this node. */
        max_connections_per_slice: z.number().int().min(1).max(65_536).default(32),
        /** Logged-in connections on this node. */
        max_connections: z.number().int().min(1).max(65_536).default(256),
      })
      .strict()
      .optional(),
    /** The sliver network of container slivers (docs/node-manager.md, "The sliver network"); absent: loopback only. */
    network: networkConfigSchema.optional(),
    /** How often expired slivers are looked for (ms). */
    reaper_interval_ms: ms(20, 3_600_000, 5_000),
    /** How often work directories are measured against their disk quota (ms). */
    disk_check_interval_ms: ms(50, 86_400_000, 30_000),
    /** How often a heartbeat goes to the management authority (ms), and each one's deadline. */
    heartbeat_interval_ms: ms(50, 3_600_000, 5_000),
    heartbeat_deadline_ms: ms(50, 60_000, 3_000),
  })
  .strict()
  .refine((c) => isUrnOfKind('node')(c.urn), {
    message: 'a node manager runs as its node: urn must be urn:fedlab:<domain>:node:<name>',
    path: ['urn'],
  });

/** The compiled node manager config. */
export type NmConfig = z.infer<typeof nmConfigSchema>;

/** Config fields holding paths, resolved against the config file's folder. */
export const NM_PATH_FIELDS = ['owner.certificate', 'owner.credential', 'images_dir', 'ssh.host_key_file'] as const;
