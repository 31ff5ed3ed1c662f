// Fuzzing at the wire (issue 15 item 7): every method of the descriptor set gets noise, edited valid
// requests and random field values (test/helpers/wire-fuzzer.ts) from its right principal and from
// callers who should be refused, against the real servers of one federation in this process. No answer
// may be INTERNAL or UNKNOWN, no server may crash or stop answering, the process' memory stays bounded,
// and a refused call leaves the server's store exactly as it was. Bounded here (FEDLAB_FUZZ_INPUTS,
// FEDLAB_FUZZ_BUDGET_MS); `npm run fuzz` sends 100,000 inputs with a fresh seed (FEDLAB_FUZZ_SEED).
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAttackFederation, type AttackFederation } from '../helpers/attack-federation.js';
import { makeAttackFixtures, type AttackFixtures } from '../helpers/attack-fixtures.js';
import { callerOf } from '../helpers/caller-classes.js';
import { unreadableKeyCertificate } from '../helpers/broken-certificate.js';
import { apiMethods } from '../helpers/descriptor-set.js';
import { disposeParties } from '../helpers/ma-harness.js';
import { homeStores } from '../helpers/method-targets.js';
import { codeName, encodeRequest, WireCalls } from '../helpers/raw-call.js';
import { StoreWatch } from '../helpers/store-watch.js';
import { runWireFuzz, type FuzzFinding, type FuzzSeed } from '../helpers/wire-fuzzer.js';
import { AUTHORIZATION_TABLE } from './authorization-table.js';

const INPUTS = Number(process.env.FEDLAB_FUZZ_INPUTS ?? 3000);
const BUDGET_MS = Number(process.env.FEDLAB_FUZZ_BUDGET_MS ?? (process.env.FEDLAB_FUZZ_INPUTS ? 6 * 3_600_000 : 30_000));
const SEED = Number(process.env.FEDLAB_FUZZ_SEED ?? 15);
/** Findings reported to their owner and not fixed yet: printed, counted, and not failed on here (none today). */
const KNOWN_FINDINGS: readonly { method: string; code: string; details: string }[] = [];
const known = (f: FuzzFinding): boolean =>
  KNOWN_FINDINGS.some((k) => k.method === f.method && k.code === f.code && k.details === f.details);

/** The audit log's tables. */
const AUDIT_TABLES = ['audit', 'audit-meta'];
/** Growth of the heap over the whole run that still counts as bounded. */
const HEAP_BOUND = 256 * 1024 * 1024;

let fed: AttackFederation;
let fx: AttackFixtures;
let calls: WireCalls;
let watch: StoreWatch;

beforeAll(async () => {
  fed = await startAttackFederation({ driver: 'simulated', dirPrefix: 'fedlab-fuzz-' });
  fx = await makeAttackFixtures(fed);
  calls = new WireCalls(fed.allCaPem);
  watch = new StoreWatch(homeStores(fed));
  // Whatever the servers write while nobody calls them (heartbeats, sweeps) is theirs, not a call's; the
  // audit log records every call, refused ones too, by design (services/core/audit).
  await watch.learnBackground(homeStores(fed), 3000);
  for (const table of AUDIT_TABLES) watch.background.add(table);
}, 180_000);

afterAll(async () => {
  watch?.close();
  calls?.close();
  fx?.heartbeatNode.close();
  await fed?.destroy();
  await disposeParties();
});

/** URNs, names and ids of objects that exist, which random requests should often name. */
function knownStrings(): string[] {
  const who = Object.values(fed.who).map((p) => p.urn);
  const nodes = fed.nodes.flatMap((n) => [n.urn, n.endpoint]);
  return [
    ...new Set([
      ...who,
      ...nodes,
      fx.main.urn,
      fx.main.sliverUrn,
      fx.side.urn,
      fx.betaSlice.urn,
      fx.heartbeatNode.urn,
      fx.chains.acmeSpare.jti,
      ...Object.values(fx.absent),
      fed.home.maUrn,
      fed.home.sa.urn,
      'urn:fedlab:a.test:slice:mx-agg',
      'urn:fedlab:a.test:sliver:mx-nm',
      'mx-deploy',
      'main',
      'a.test',
      'b.test',
    ]),
  ];
}

describe('fuzzing at the wire', () => {
  // The fixed cases first: the fuzzer may delete or fail the objects they use.
  it('answers a certificate whose key cannot be read with INVALID_ARGUMENT wherever a request carries one', async () => {
    const m = new Map(apiMethods().map((x) => [x.key, x]));
    const method = (key: string) => m.get(key) ?? (m.get('Federation.GetBundle') as NonNullable<ReturnType<typeof m.get>>);
    const { who, home } = fed;
    const tries: [string, 'provider' | 'site-admin' | 'operator', string, Record<string, string>][] = [
      [
        'ManagementAuthority.RegisterServiceProvider',
        'provider',
        fed.site.address,
        {
          requestId: 'bad-key',
          providerUrn: who.acme.urn,
          certificatePem: unreadableKeyCertificate(who.acme.certPem),
          acceptedTermsDigest: fx.termsDigest,
        },
      ],
      [
        'ManagementAuthority.DelegateToSliceAuthority',
        'site-admin',
        fed.site.address,
        { requestId: 'bad-key', sliceAuthorityUrn: home.sa.urn, sliceAuthorityCertificatePem: unreadableKeyCertificate(home.sa.certPem) },
      ],
      [
        'ServiceProvider.AddMember',
        'operator',
        fed.sp.address,
        { requestId: 'bad-key', memberUrn: who.carol.urn, certificatePem: unreadableKeyCertificate(who.carol.certPem) },
      ],
      [
        'SliceAuthority.IssueSliceCredential',
        'provider',
        fed.sa.address,
        { requestId: 'bad-key', sliceUrn: fx.main.urn, holderCertificatePem: unreadableKeyCertificate(who.acme.certPem) },
      ],
    ];
    const got: Record<string, string> = {};
    for (const [key, as, address, request] of tries)
      got[key] = codeName((await calls.call(address, method(key), request, callerOf(fed, fx, as, 'right'))).code);
    expect(got).toEqual(Object.fromEntries(tries.map(([key]) => [key, 'INVALID_ARGUMENT'])));
  });

  // Known: see KNOWN_FINDINGS.
  it('the enrolment listener answers bytes that are not an EnrollNode request with INVALID_ARGUMENT', async () => {
    const enroll = apiMethods().find((x) => x.key === 'ManagementAuthority.EnrollNode');
    if (!enroll) throw new Error('ManagementAuthority.EnrollNode is not in the descriptor set');
    const end = await calls.call(fed.site.enrolAddress, enroll, Buffer.from([0x9c]), callerOf(fed, fx, 'token', 'right'));
    expect(codeName(end.code)).toBe('INVALID_ARGUMENT');
  });

  it(
    `answers fuzzed requests to every method (${INPUTS} inputs, seed ${SEED}) without INTERNAL, crash or a trace of refused calls`,
    async () => {
      const seeds: FuzzSeed[] = [];
      for (const method of apiMethods()) {
        const row = AUTHORIZATION_TABLE[method.key];
        const bytes = row ? encodeRequest(method, await row.request(fx, fed, 'right')) : new Uint8Array();
        seeds.push({ method, as: row?.as ?? 'provider', bytes });
      }
      const heapBefore = process.memoryUsage().heapUsed;
      const report = await runWireFuzz({
        fed,
        fx,
        calls,
        watch,
        seeds,
        known: knownStrings(),
        inputs: INPUTS,
        timeBudgetMs: BUDGET_MS,
        seed: SEED,
        progress: (done, r) =>
          console.log(
            `fuzz: ${done} inputs in ${Math.round(r.ms / 1000)} s, ${r.findings.length} findings, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`,
          ),
      });
      const heapAfter = process.memoryUsage().heapUsed;
      console.log(
        `fuzz: ${report.inputs} inputs over ${report.methods} methods in ${(report.ms / 1000).toFixed(1)} s; ` +
          `codes ${JSON.stringify(report.byCode)}; refused calls not compared (store busy): ${report.unchecked}; ` +
          `heap ${(heapBefore / 2 ** 20).toFixed(0)} → ${(heapAfter / 2 ** 20).toFixed(0)} MiB`,
      );
      for (const f of report.findings) console.log(`fuzz finding: ${JSON.stringify({ ...f, input: f.input.slice(0, 400) })}`);
      // The whole inputs, for reproducing a finding.
      if (process.env.FEDLAB_FUZZ_REPORT) writeFileSync(process.env.FEDLAB_FUZZ_REPORT, JSON.stringify(report, null, 1));

      // Every server still answers.
      const bundle = apiMethods().find((m) => m.key === 'Federation.GetBundle');
      if (!bundle) throw new Error('Federation.GetBundle is not in the descriptor set');
      const caller = callerOf(fed, fx, 'provider', 'right');
      const addresses = [fed.site.address, fed.sa.address, fed.sp.address, ...fed.nodes.map((n) => n.endpoint)];
      for (const address of addresses) expect(codeName((await calls.call(address, bundle, {}, caller)).code), address).toBe('OK');

      expect(report.findings.filter((f) => !known(f))).toEqual([]);
      expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND);
      expect(report.inputs).toBeGreaterThan(Math.min(INPUTS, 500));
    },
    BUDGET_MS + 120_000,
  );
});
