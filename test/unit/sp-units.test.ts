// Unit tests of the service provider's parts that stand alone: its config, the restart back-off, output
// lines (the provider's and the node manager's), access, the terms statement, and Deploy's checks of bad
// input (which must change nothing).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileConfig } from '../../services/core/config.js';
import { InvalidArgumentError, PermissionDeniedError } from '../../services/core/errors.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';
import { silentLogger } from '../../services/core/log.js';
import { Store } from '../../services/core/store/store.js';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import type { DeployRequest } from '../../services/generated/fedlab/v1/service_provider.js';
import { OutputTail } from '../../services/node-manager/output-tail.js';
import { waitFor } from '../helpers/servers.js';
import { Access } from '../../services/service-provider/access.js';
import { spConfigSchema, SP_PATH_FIELDS } from '../../services/service-provider/config.js';
import { Deployments } from '../../services/service-provider/deployments/deployments.js';
import { backoffDelay, exitText } from '../../services/service-provider/deployments/supervisor.js';
import { OutputLines } from '../../services/service-provider/output.js';
import { Registrations, signTermsStatement, TERMS_STATEMENT_TYP } from '../../services/service-provider/registrations.js';
import { TABLES } from '../../services/service-provider/records.js';
import type { Remotes } from '../../services/service-provider/remotes.js';
import type { SliceCredentials } from '../../services/service-provider/slice-credentials.js';

const base = {
  role: 'sp',
  urn: 'urn:fedlab:acme.test:sp:acme',
  listen: { host: '127.0.0.1', port: 0 },
  tls: { ca: 'pki/ca.pem', cert: 'pki/cert.pem', key: 'pki/key.pem' },
  trust_bundle: 'pki/bundle.json',
  data_dir: 'data',
  admins: ['urn:fedlab:acme.test:user:alice'],
  slice_authority: { urn: 'urn:fedlab:plc.test:authority:sa', endpoint: '127.0.0.1:7301' },
  sites: [{ domain: 'plc.test', ma_urn: 'urn:fedlab:plc.test:authority:ma', endpoint: '127.0.0.1:7001' }],
};

describe('service provider config', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-spcfg-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const compile = (value: unknown) => {
    const file = join(dir, 'sp.json');
    writeFileSync(file, JSON.stringify(value));
    return compileConfig(spConfigSchema, { file }, SP_PATH_FIELDS);
  };

  it('compiles with defaults', () => {
    const c = compile(base);
    expect(c.supervision.backoff_initial_ms).toBe(1000);
    expect(c.supervision.backoff_max_ms).toBe(60_000);
    expect(c.members.default_privileges).toEqual(['sliver.exec', 'sliver.read']);
    expect(c.readers).toEqual([]);
    expect(c.data_dir).toBe(join(dir, 'data'));
  });

  it.each([
    [{ ...base, urn: 'urn:fedlab:acme.test:authority:x' }, /urn: a service provider runs as a provider/],
    [{ ...base, admins: [] }, /admins: name at least one administrator/],
    [{ ...base, slice_authority: { urn: 'urn:fedlab:plc.test:sp:x', endpoint: '127.0.0.1:1' } }, /slice_authority\.urn/],
    [{ ...base, slice_authority: { urn: base.slice_authority.urn, endpoint: 'nope' } }, /slice_authority\.endpoint: must be host:port/],
    [{ ...base, sites: [base.sites[0], base.sites[0]] }, /a site domain appears at most once/],
    [{ ...base, sites: [{ ...base.sites[0], accept_terms_digest: 'md5:x' }] }, /accept_terms_digest/],
    [{ ...base, supervision: { backoff_initial_ms: 5000, backoff_max_ms: 1000 } }, /backoff_initial_ms must not exceed backoff_max_ms/],
    [{ ...base, readers: ['not a urn'] }, /readers\.0/],
    [{ ...base, surprise: 1 }, /unknown key "surprise"/],
  ])('refuses bad config %#', (value, message) => {
    expect(() => compile(value)).toThrow(InvalidArgumentError);
    expect(() => compile(value)).toThrow(message);
  });
});

describe('restart back-off', () => {
  it('doubles from the initial delay and stays at the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, 100, 1000))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(10_000, 100, 1000)).toBe(1000);
  });

  it('says how a run ended', () => {
    expect(exitText({ code: 3, timedOut: false })).toBe('exit code 3');
    expect(exitText({ signal: 'SIGKILL', timedOut: true })).toBe('signal SIGKILL (timed out)');
  });
});

describe('output lines', () => {
  it('splits each stream into lines on its own, keeps the last ones and cuts long lines', () => {
    const o = new OutputLines(3);
    o.write('stdout', Buffer.from('a\nb'));
    o.write('stderr', Buffer.from('E1\n'));
    o.write('stdout', Buffer.from('c\r\nd\n'));
    expect(o.changed).toBe(true);
    expect(o.take()).toEqual(['E1', 'bc', 'd']);
    expect(o.changed).toBe(false);
    o.write('stdout', Buffer.from('x'.repeat(5000)));
    const last = o.take().at(-1) as string;
    expect(last.length).toBe(1025);
    o.write('stdout', Buffer.from('tail'));
    o.end();
    expect(o.take().at(-1)).toBe('tail');
  });

  it('node manager: keeps the last lines per sliver and forgets a deleted sliver', () => {
    const tail = new OutputTail(2);
    const w = tail.writer('urn:fedlab:plc.test:sliver:s1');
    w.write('stdout', Buffer.from('one\ntwo\nthr'));
    w.write('stderr', Buffer.from('err\n'));
    w.end();
    expect(tail.last('urn:fedlab:plc.test:sliver:s1', 10)).toEqual(['err', 'thr']);
    expect(tail.last('urn:fedlab:plc.test:sliver:s1', 1)).toEqual(['thr']);
    expect(tail.last('urn:fedlab:plc.test:sliver:other', 5)).toEqual([]);
    tail.forget('urn:fedlab:plc.test:sliver:s1');
    expect(tail.last('urn:fedlab:plc.test:sliver:s1', 10)).toEqual([]);
  });
});

describe('access', () => {
  const access = new Access(['urn:fedlab:acme.test:user:alice'], ['urn:fedlab:acme.test:user:*']);
  it('lets admins do everything and readers only read', () => {
    expect(() => access.requireAdmin({ urn: 'urn:fedlab:acme.test:user:alice' }, 'deploy')).not.toThrow();
    expect(() => access.requireReader({ urn: 'urn:fedlab:acme.test:user:bob' }, 'read')).not.toThrow();
    expect(() => access.requireAdmin({ urn: 'urn:fedlab:acme.test:user:bob' }, 'deploy')).toThrow(PermissionDeniedError);
    expect(() => access.requireReader({ urn: 'urn:fedlab:acme.testx:user:bob' }, 'read')).toThrow(
      /only this provider's administrators and readers/,
    );
  });
});

describe('terms statement', () => {
  it('is a compact JWS with exactly {alg, typ, kid} over {sub, terms, iat}', async () => {
    const { privateKey, publicKey } = generateKeyPair();
    const jws = await signTermsStatement(privateKey, 'kid-1', 'urn:fedlab:acme.test:sp:acme', 'sha256:abc', 1_764_000_000_500);
    expect(decodeProtectedHeader(jws)).toEqual({ alg: 'ES256', typ: TERMS_STATEMENT_TYP, kid: 'kid-1' });
    const { payload } = await compactVerify(jws, publicKey);
    expect(JSON.parse(Buffer.from(payload).toString())).toEqual({
      sub: 'urn:fedlab:acme.test:sp:acme',
      terms: 'sha256:abc',
      iat: 1_764_000_000,
    });
  });
});

describe('Deploy refuses bad input and changes nothing', () => {
  let dir: string;
  let store: Store;
  let deployments: Deployments;
  const calls: string[] = [];
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-spdep-'));
    store = await Store.open(dir);
    calls.length = 0;
    // A fake slice authority inside this unit test: it only says it is unreachable.
    const unreachable = (what: string) => () => {
      calls.push(what);
      return Promise.reject(Object.assign(new Error('down'), { code: 14, details: 'connection refused' }));
    };
    const remotes = {
      sliceAuthority: () => ({ createSlice: unreachable('createSlice'), getSlice: unreachable('getSlice') }),
    } as unknown as Remotes;
    deployments = new Deployments({
      store,
      clock: { now: () => Date.now() },
      log: silentLogger(),
      remotes,
      credentials: {} as SliceCredentials,
      sliceAuthorityUrn: 'urn:fedlab:plc.test:authority:sa',
      sites: [
        { domain: 'plc.test', maUrn: 'urn:fedlab:plc.test:authority:ma', endpoint: '127.0.0.1:1' },
        { domain: 'pg.test', maUrn: 'urn:fedlab:pg.test:authority:ma', endpoint: '127.0.0.1:1' },
      ],
      supervision: { backoffInitialMs: 10, backoffMaxMs: 20, backoffResetMs: 1000, outputLines: 5, execTimeoutMs: 1000, retryMs: 60_000 },
      sliceDeadlineMs: 1000,
      maDeadlineMs: 1000,
    });
    await deployments.start();
  });
  afterEach(async () => {
    await deployments.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const request = (
    o: Partial<DeployRequest> & {
      steps?: { argv: string[]; service: boolean }[];
      sites?: string[];
      sliceUrn?: string;
      stitch?: string[][];
    } = {},
  ): DeployRequest => ({
    requestId: o.requestId ?? 'r1',
    name: o.name ?? 'web',
    spec: {
      sliceUrn: o.sliceUrn ?? '',
      sliceAuthorityUrn: '',
      sliceName: '',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: (o.sites ?? ['plc.test']).map((site) => ({
        site,
        request: o.stitch
          ? {
              nodes: { nodeUrns: [], count: 1, clientIds: ['n0'] },
              resources: undefined,
              links: [],
              exclusive: false,
              requestDocument: '',
              requestDocumentFormat: '',
            }
          : undefined,
      })),
      ...(o.stitch
        ? {
            stitchedLinks: {
              links: o.stitch.map(([siteA = '', a = '', siteB = '', b = ''], i) => ({
                name: `wan${i}`,
                endpoints: [
                  { site: siteA, clientId: a },
                  { site: siteB, clientId: b },
                ],
                bandwidthKbps: 1000,
                delayMs: 0,
                lossPercent: 0,
              })),
            },
          }
        : {}),
      expiresAt: undefined,
      steps: (o.steps ?? [{ argv: ['sleep', '60'], service: true }]).map((s) => ({ name: '', env: {}, timeoutMs: 0, ...s })),
    },
  });
  const drain = async (req: DeployRequest, until = 1) => {
    const out = [];
    for await (const e of deployments.deploy(req, new AbortController().signal)) {
      out.push(e);
      if (out.length >= until) break;
    }
    return out;
  };

  it.each([
    [{ requestId: 'bad id!' }, /request_id/],
    [{ name: 'Web' }, /name must match/],
    [{ steps: [] }, /spec.steps is empty/],
    [{ steps: [{ argv: [], service: false }] }, /argv is empty/],
    [
      {
        steps: [
          { argv: ['a'], service: true },
          { argv: ['b'], service: false },
        ],
      },
      /the service must be the last step/,
    ],
    [{ sites: ['emu.test'] }, /site emu.test is not one this provider knows/],
    [{ sites: [] }, /spec.sites is empty/],
    [{ sliceUrn: 'urn:fedlab:plc.test:slice:s' }, /give spec.slice_urn or spec.sites, not both/],
    [
      { sites: ['plc.test'], stitch: [['plc.test', 'n0', 'pg.test', 'n0']] },
      /endpoints\[1\].site: stitched link wan0 .*not a site of this request/,
    ],
    [{ sites: ['plc.test', 'pg.test'], stitch: [['plc.test', 'n0', 'plc.test', 'n0']] }, /stitched link wan0 joins two nodes of one site/],
    [{ sites: ['plc.test', 'pg.test'], stitch: [['plc.test', 'n0', 'pg.test', 'n9']] }, /endpoints\[1\].client_id: .*names no node/],
    [
      { sites: [], sliceUrn: 'urn:fedlab:plc.test:slice:s', stitch: [['plc.test', 'n0', 'pg.test', 'n0']] },
      /spec.stitched_links is for a slice the deployment creates/,
    ],
  ])('refuses %o', async (o, message) => {
    await expect(drain(request(o))).rejects.toThrow(message);
    expect(await store.table(TABLES.deployments).count()).toBe(0);
    expect(await store.table(TABLES.deployRequests).count()).toBe(0);
    expect(calls).toEqual([]);
  });

  it("records a deployment's stitched links and shows them in its spec", async () => {
    const [first] = await drain(request({ sites: ['plc.test', 'pg.test'], stitch: [['plc.test', 'n0', 'pg.test', 'n0']] }), 1);
    const links = first?.deployment?.spec?.stitchedLinks?.links ?? [];
    expect(links.map((l) => [l.name, l.bandwidthKbps, l.endpoints.map((e) => `${e.site}/${e.clientId}`)])).toEqual([
      ['wan0', 1000, ['plc.test/n0', 'pg.test/n0']],
    ]);
    expect(await store.table(TABLES.deployments).count()).toBe(1);
  });

  it('records a deployment once per request id; another spec under the same id, or the same name, is ALREADY_EXISTS', async () => {
    const first = await drain(request(), 1);
    expect(first[0]?.sequence).toBe(1);
    expect(first[0]?.deployment?.name).toBe('web');
    await expect(drain(request({ steps: [{ argv: ['other'], service: true }] }))).rejects.toThrow(/request id r1 was already used/);
    await expect(drain(request({ requestId: 'r2' }))).rejects.toThrow(/deployment web already exists/);
    const again = await drain(request(), 1);
    expect(again[0]?.deployment?.requestId).toBe('r1');
    expect(await store.table(TABLES.deployments).count()).toBe(1);
  });
});

describe('registrations', () => {
  it('refuses terms other than the accepted digest (recorded, retried with back-off), then registers with a signed statement', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlab-spreg-'));
    const store = await Store.open(dir);
    const { privateKey } = generateKeyPair();
    let digest = `sha256:${'1'.repeat(64)}`;
    const registered: { digest: string; statement: string | undefined }[] = [];
    // A fake site inside this unit test: GetVersion shows `digest`; RegisterServiceProvider records what it got.
    const remotes = {
      site: () => ({
        aggregate: { getVersion: () => Promise.resolve({ termsDigest: digest }) },
        ma: {
          registerServiceProvider: (req: { acceptedTermsDigest: string }, opts: { metadata: { get(k: string): unknown[] } }) => {
            registered.push({
              digest: req.acceptedTermsDigest,
              statement: opts.metadata.get('fedlab-terms-statement')[0] as string | undefined,
            });
            return Promise.resolve({});
          },
        },
      }),
    } as unknown as Remotes;
    const accepted = `sha256:${'2'.repeat(64)}`;
    const regs = new Registrations({
      store,
      clock: { now: () => Date.now() },
      log: silentLogger(),
      remotes,
      providerUrn: 'urn:fedlab:acme.test:sp:acme',
      certificatePem: '',
      key: privateKey,
      kid: 'kid',
      contact: 'ops',
      sites: [{ domain: 'plc.test', maUrn: 'urn:fedlab:plc.test:authority:ma', endpoint: '127.0.0.1:1', acceptTermsDigest: accepted }],
      retryMs: 20,
      maxRetryMs: 40,
      refreshMs: 60_000,
      deadlineMs: 1000,
    });
    try {
      regs.start();
      await waitFor(async () => ((await regs.list())[0]?.attempts ?? 0) >= 3, 10_000, 'three attempts');
      const failed = (await regs.list())[0];
      expect(failed?.state).toBe('failed');
      expect(failed?.lastError).toContain(`shows terms ${digest}, but this provider accepts only ${accepted}`);
      expect(failed?.attempts).toBeGreaterThanOrEqual(3);
      expect(registered).toEqual([]);
      digest = accepted;
      await waitFor(async () => (await regs.list())[0]?.state === 'registered', 10_000, 'registered');
      const ok = (await regs.list())[0];
      expect(ok?.state).toBe('registered');
      expect(ok?.termsDigest).toBe(accepted);
      expect(registered[0]?.digest).toBe(accepted);
      expect(decodeProtectedHeader(registered[0]?.statement as string).typ).toBe(TERMS_STATEMENT_TYP);
    } finally {
      await regs.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
