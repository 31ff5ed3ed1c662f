/**
 * Credential verification benchmark (`npm run bench:credentials`). Prints,
 * from one run on one machine:
 *
 * - the floor: raw node:crypto signature verifications per second (ES256,
 *   Ed25519), of exactly the signatures of the chain measured;
 * - uncached verification of a 4-link chain per second, and its ratio to the
 *   floor for four signatures (target: at least 0.9);
 * - cached re-verification per second (target: at least 1 000 000), every
 *   call with the clock, trust anchor, revocation, holder and grant checked,
 *   on links that arrive as new strings (as from gRPC metadata, whose hash V8
 *   has not computed): each presentation is a fresh copy, used once, made
 *   before the timed loop — the copying is the transport's work, not the
 *   verifier's — and, for comparison, the rate with the copying counted;
 * - the size of a 4-link chain;
 * - the speed-up over GENI's XML credentials, which spawn one xmlsec1 process
 *   per signature (about 24 ms each; target: at least 300 times faster per chain).
 *
 * Figures, not a test: nothing here fails on a slow machine. The workloads
 * run in alternating rounds; each rate is its best round (other work on a
 * shared machine only ever slows a round down) and the ratio is the median of
 * ratios taken within a round, so both sides saw the same load. `--json`
 * prints the figures as JSON too.
 */
import { verify, type KeyObject } from 'node:crypto';
import {
  ChainCache,
  NO_REVOCATIONS,
  TrustStore,
  delegate,
  issueRoot,
  thumbprintOf,
  toPublicJwk,
  verifyChain,
  type Grant,
} from '../services/core/credentials/index.js';
import type { TrustBundle } from '../services/core/identity/trust-bundle.js';
import { median } from './support.js';
import { generateKeyPair } from '../services/core/identity/keys.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const GENI_MS_PER_SIGNATURE = 24;
/**
 * Presentations made per batch of the cached workload, each used once: few, so they are still in the
 * CPU cache when verified, as a server's are (just decoded from the connection).
 */
const BATCH = 16;

type Alg = 'ES256' | 'EdDSA';

function keyPair(alg: Alg): { privateKey: KeyObject; publicKey: KeyObject } {
  return alg === 'ES256' ? generateKeyPair('p256') : generateKeyPair('ed25519');
}

/** Operations per second of `fn` over about `ms` milliseconds. */
function rateFor(fn: () => unknown, ms: number): number {
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

/** A workload whose inputs are made before the timed loop: `make` gives a batch, `run` takes one input. */
interface Batched<T> {
  readonly make: () => T[];
  readonly run: (input: T) => unknown;
}

// The batched workloads here present chains: batches of string arrays.
type Workload = (() => unknown) | Batched<string[]>;

/** Operations per second of `w.run` over about `ms` milliseconds of timed work, each input used once. */
function batchedRateFor<T>(w: Batched<T>, ms: number): number {
  let n = 0;
  let ns = 0n;
  const budget = BigInt(ms) * 1_000_000n;
  while (ns < budget) {
    const inputs = w.make();
    const start = process.hrtime.bigint();
    for (const input of inputs) w.run(input);
    ns += process.hrtime.bigint() - start;
    n += inputs.length;
  }
  return n / (Number(ns) / 1e9);
}

function rateOf(w: Workload, ms: number): number {
  return typeof w === 'function' ? rateFor(w, ms) : batchedRateFor(w, ms);
}

/**
 * Rates of several workloads measured in alternating rounds, so that each
 * round compares them under the same load: per workload the best round, and
 * the rounds themselves for per-round ratios.
 */
function compare<K extends string>(fns: Record<K, Workload>): { best: Record<K, number>; rounds: Record<K, number>[] } {
  const keys = Object.keys(fns) as K[];
  // Warm up the JIT and the key caches.
  for (const k of keys) {
    const w = fns[k];
    if (typeof w === 'function') for (let i = 0; i < 300; i++) w();
    else for (const input of w.make()) w.run(input);
  }
  const rounds: Record<K, number>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round = {} as Record<K, number>;
    for (const k of keys) round[k] = rateOf(fns[k], ROUND_MS);
    rounds.push(round);
  }
  const best = {} as Record<K, number>;
  for (const k of keys) best[k] = Math.max(...rounds.map((r) => r[k]));
  return { best, rounds };
}

/**
 * The floor: raw node:crypto verifications of the chain's own four signatures
 * (each link's signing input, signature and signer's public key, prepared in
 * advance), one per call, round robin. This is the work no verifier can skip.
 */
function rawVerify(alg: Alg, chain: readonly string[], signers: readonly KeyObject[]): () => void {
  const prepared = chain.map((token, i) => {
    const dot = token.lastIndexOf('.');
    return { data: Buffer.from(token.slice(0, dot)), sig: Buffer.from(token.slice(dot + 1), 'base64url'), key: signers[i] as KeyObject };
  });
  let i = 0;
  return () => {
    const p = prepared[i++ & 3] as (typeof prepared)[number];
    const ok =
      alg === 'ES256' ? verify('sha256', p.data, { key: p.key, dsaEncoding: 'ieee-p1363' }, p.sig) : verify(null, p.data, p.key, p.sig);
    if (!ok) throw new Error('bad signature in the floor benchmark');
  };
}

/** MA → SA → SP → member: four links, every principal on `alg`. */
async function fourLinkChain(alg: Alg) {
  const p = (urn: string) => ({ urn, ...keyPair(alg) });
  const ma = p('urn:fedlab:plc.test:authority:ma');
  const sa = p('urn:fedlab:plc.test:authority:sa');
  const sp = p('urn:fedlab:plc.test:sp:acme');
  const member = p('urn:fedlab:plc.test:user:alice');
  const user = p('urn:fedlab:plc.test:user:bob');
  const now = new Date();
  let chain = (
    await issueRoot({
      key: ma.privateKey,
      issuer: ma.urn,
      subject: sa.urn,
      subjectKey: sa.publicKey,
      targets: ['urn:fedlab:plc.test:node:*'],
      privileges: ['sliver.create', 'sliver.delete', 'sliver.renew', 'sliver.control', 'sliver.exec', 'node.read'],
      dlg: 3,
      limits: { slivers: 100, cpu_millis: 4000, mem_mb: 8192, disk_mb: 20480, ttl_s: 4838400 },
      now,
    })
  ).chain;
  chain = (await delegate(chain, { key: sa.privateKey, subject: sp.urn, subjectKey: sp.publicKey, limits: { slivers: 20 }, now })).chain;
  chain = (
    await delegate(chain, {
      key: sp.privateKey,
      subject: member.urn,
      subjectKey: member.publicKey,
      privileges: ['sliver.create', 'sliver.exec', 'node.read'],
      now,
    })
  ).chain;
  chain = (
    await delegate(chain, {
      key: member.privateKey,
      subject: user.urn,
      subjectKey: user.publicKey,
      targets: ['urn:fedlab:plc.test:node:n1'],
      ttlSeconds: 86_400,
      now,
    })
  ).chain;
  const jwk = toPublicJwk(ma.publicKey);
  const bundle: TrustBundle = {
    v: 1,
    domain: 'plc.test',
    serial: 1,
    issued_at: now.toISOString(),
    ca_certs: [],
    authorities: [{ urn: ma.urn, jwk: jwk as never, kid: thumbprintOf(jwk) }],
    revocation_version: 0,
  };
  const trust = new TrustStore();
  trust.addBundle(bundle);
  const holder = { urn: user.urn, thumbprint: thumbprintOf(toPublicJwk(user.publicKey)) };
  // The public key that signed each link: the root's issuer, then each holder in turn.
  const signers = [ma, sa, sp, member].map((p) => p.publicKey);
  return { chain, trust, holder, now, signers };
}

interface Figures {
  alg: Alg;
  floor_per_s: number;
  uncached_chains_per_s: number;
  /** Median over rounds of (uncached chains/s) / (floor/s / 4), each round measuring both back to back. */
  ratio_to_floor: number;
  cached_chains_per_s: number;
  /** Cached re-verification with the making of the new strings counted. */
  cached_with_copy_per_s: number;
  chain_bytes: number;
  us_per_uncached_chain: number;
  geni_speedup: number;
}

async function measure(alg: Alg): Promise<Figures> {
  const { chain, trust, holder, now, signers } = await fourLinkChain(alg);
  const input = {
    chain,
    trust,
    holder,
    privilege: 'sliver.exec' as const,
    object: 'urn:fedlab:plc.test:node:n1',
    now,
    revocations: NO_REVOCATIONS,
  };
  const cache = new ChainCache();
  let grant: Grant | undefined;
  // One literal shape for every call, as authorize() builds it (a spread per call cost more than a cached verification).
  const verify = (presented: readonly string[], c: ChainCache | null): Grant =>
    verifyChain({
      chain: presented,
      trust: input.trust,
      holder: input.holder,
      privilege: input.privilege,
      object: input.object,
      now: input.now,
      revocations: input.revocations,
      cache: c,
      incarnation: undefined,
    });
  const { best, rounds } = compare({
    floor: rawVerify(alg, chain, signers),
    uncached: () => (grant = verify(chain, null)),
    // Each presentation arrives as new strings, as from gRPC metadata (whose hash V8 has not computed yet),
    // made before the timed loop and used once.
    cached: {
      make: () => Array.from({ length: BATCH }, () => chain.map(fresh)),
      run: (presented: string[]) => (grant = verify(presented, cache)),
    },
    // The same with the copying counted, as this benchmark measured before.
    cachedWithCopy: () => (grant = verify(chain.map(fresh), cache)),
  });
  if (!grant || cache.stats.hits === 0) throw new Error('the benchmark chain did not verify from the cache');
  const bytes = chain.reduce((n, l) => n + Buffer.byteLength(l), 0) + chain.length; // one newline per link in a chain file
  return {
    alg,
    floor_per_s: best.floor,
    uncached_chains_per_s: best.uncached,
    ratio_to_floor: median(rounds.map((r) => r.uncached / (r.floor / 4))),
    cached_chains_per_s: best.cached,
    cached_with_copy_per_s: best.cachedWithCopy,
    chain_bytes: bytes,
    us_per_uncached_chain: 1e6 / best.uncached,
    geni_speedup: (4 * GENI_MS_PER_SIGNATURE) / (1000 / best.uncached),
  };
}

/** A new string with the same text (not the same string object). */
function fresh(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const results: Figures[] = [];
for (const alg of ['ES256', 'EdDSA'] as const) results.push(await measure(alg));

process.stdout.write(
  `credential verification, node ${process.version}, ${ROUNDS} alternating rounds of ${ROUND_MS} ms per workload (rates: best round; ratio: median of per-round ratios)\n\n`,
);
for (const f of results) {
  process.stdout.write(
    [
      `${f.alg} (every link signed with ${f.alg === 'ES256' ? 'P-256' : 'Ed25519'})`,
      `  floor: raw node:crypto verify            ${fmt(f.floor_per_s)} /s  (the chain's own signatures, keys imported)`,
      `  4-link chain, uncached                   ${fmt(f.uncached_chains_per_s)} /s  (${f.us_per_uncached_chain.toFixed(0)} µs per chain)`,
      `  ratio to the floor for four signatures   ${f.ratio_to_floor.toFixed(2)}  (target >= 0.90: ${f.ratio_to_floor >= 0.9 ? 'met' : 'NOT met'})`,
      `  4-link chain, cached re-verification     ${fmt(f.cached_chains_per_s)} /s  (new strings, made untimed; target >= 1,000,000: ${f.cached_chains_per_s >= 1_000_000 ? 'met' : 'NOT met'})`,
      `    the same, copying the strings counted  ${fmt(f.cached_with_copy_per_s)} /s`,
      `  4-link chain size                        ${f.chain_bytes} bytes (limit 16384)`,
      `  vs GENI xmlsec1 (4 x ${GENI_MS_PER_SIGNATURE} ms per chain)        ${fmt(f.geni_speedup)} times faster  (target >= 300: ${f.geni_speedup >= 300 ? 'met' : 'NOT met'})`,
      '',
    ].join('\n'),
  );
}
if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
