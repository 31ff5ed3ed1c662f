// Enrolment of nodes: one-time, expiring tokens stored only hashed; a reused, expired or forged token, or a
// bad owner credential, is refused and changes nothing; concurrent redemptions of one token cannot both win;
// a CSR works as well as a bare public key; the certificate names the node and chains to the site CA.
import { X509Certificate } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueRoot } from '../../services/core/credentials/index.js';
import { publicKeyToPem } from '../../services/core/identity/keys.js';
import { SliverIsolation } from '../../services/generated/fedlab/v1/common.js';
import type { EnrollNodeRequest } from '../../services/generated/fedlab/v1/management_authority.js';
import { ManualClock } from '../../services/core/clock.js';
import { enrollNode } from '../../services/management-authority/enrolment-client.js';
import { tokenHash } from '../../services/management-authority/enrolment.js';
import { TABLES } from '../../services/management-authority/records.js';
import { NODE_PRIVILEGES, siteParties, startSite, type Site, type SiteParties, disposeParties } from '../helpers/ma-harness.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

let parties: SiteParties;
let site: Site;
const clock = new ManualClock(Date.now());

beforeAll(async () => {
  parties = await siteParties('enrol.test');
  site = await startSite({ parties, clock, manualTimers: true });
});
afterAll(async () => {
  await site?.destroy();
  await disposeParties();
});

async function ownerChain(
  o: { issuer?: typeof parties.owner; subjectKey?: Record<string, unknown>; privileges?: string[]; ttl?: number } = {},
): Promise<string[]> {
  const issuer = o.issuer ?? parties.owner;
  return [
    ...(
      await issueRoot({
        key: issuer.privateKey,
        issuer: issuer.urn,
        subject: parties.maUrn,
        subjectKey: o.subjectKey ?? (parties.ma.jwk as Record<string, unknown>),
        targets: [`urn:fedlab:${parties.domain}:node:*`],
        privileges: o.privileges ?? NODE_PRIVILEGES,
        ttlSeconds: o.ttl ?? 86_400,
        now: new Date(clock.now()),
      })
    ).chain,
  ];
}

function request(token: string, chain: string[], over: Partial<EnrollNodeRequest> = {}): EnrollNodeRequest {
  const { publicKey } = generateKeyPair('p256');
  return {
    token,
    publicKeyPem: publicKeyToPem(publicKey),
    csrPem: '',
    ownerCredentialChain: chain,
    endpoint: '127.0.0.1:7100',
    capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 1024, pids: 100, bandwidthKbps: 0 },
    isolation: SliverIsolation.SLIVER_ISOLATION_PROCESS,
    version: '0.1.0',
    netemAvailable: false,
    ...over,
  };
}

const enrol = (req: EnrollNodeRequest) => enrollNode({ address: site.enrolAddress, caPem: parties.pki.caPem, maUrn: parties.maUrn }, req);
const codeOf = (e: unknown) => (e as { code?: number }).code;

async function tableSizes(): Promise<Record<string, number>> {
  const store = site.service!.store;
  return { nodes: await store.table(TABLES.nodes).count(), tokens: await store.table(TABLES.tokens).count() };
}

async function newToken(name: string, ttlS = 0, who = parties.admin): Promise<string> {
  return (
    await site
      .maClient(who)
      .createEnrollmentToken({ requestId: `r-${name}-${Math.random()}`, nodeName: name, ownerUrn: parties.owner.urn, ttlS })
  ).token;
}

describe('enrolment tokens', () => {
  it('enrols a node once, and stores the token only as its hash', async () => {
    const token = await newToken('good');
    const res = await enrol(request(token, await ownerChain()));
    expect(res.nodeUrn).toBe('urn:fedlab:enrol.test:node:good');
    const cert = new X509Certificate(res.certificatePem);
    expect(cert.subjectAltName).toContain('URI:urn:fedlab:enrol.test:node:good');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(cert.verify(new X509Certificate(res.caChainPem[0]!).publicKey)).toBe(true);
    expect(res.heartbeatIntervalS).toBe(1);
    const stored = await site.service!.store.table(TABLES.tokens).get(tokenHash(token));
    expect(stored).toBeDefined();
    expect(JSON.stringify(stored)).not.toContain(token);
    // Reused: refused, nothing changes.
    const before = await tableSizes();
    const again = await enrol(request(token, await ownerChain())).catch((e: unknown) => e);
    expect(codeOf(again)).toBe(Status.UNAUTHENTICATED);
    expect((again as Error).message).toMatch(/already used/);
    expect(await tableSizes()).toEqual(before);
    // A second token for an enrolled node is refused at once.
    const dup = await newToken('good').catch((e: unknown) => e);
    expect(codeOf(dup)).toBe(Status.ALREADY_EXISTS);
  });

  it('refuses expired and forged tokens, changing nothing', async () => {
    const token = await newToken('late', 60);
    clock.advance(61_000);
    const before = await tableSizes();
    const late = await enrol(request(token, await ownerChain())).catch((e: unknown) => e);
    expect(codeOf(late)).toBe(Status.UNAUTHENTICATED);
    expect((late as Error).message).toMatch(/expired/);
    const forged = await enrol(request(`${token.slice(0, -4)}AAAA`, await ownerChain())).catch((e: unknown) => e);
    expect(codeOf(forged)).toBe(Status.UNAUTHENTICATED);
    const empty = await enrol(request('', await ownerChain())).catch((e: unknown) => e);
    expect(codeOf(empty)).toBe(Status.UNAUTHENTICATED);
    expect(await tableSizes()).toEqual(before);
  });

  it('lets only one of many concurrent redemptions of a token win', async () => {
    const token = await newToken('race');
    const chain = await ownerChain();
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => enrol(request(token, chain))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(codeOf(r.reason)).toBe(Status.UNAUTHENTICATED);
  });

  it('refuses bad owner credentials and bad keys without using the token', async () => {
    const token = await newToken('strict');
    const before = await tableSizes();
    const stranger = await parties.pki.issue('urn:fedlab:enrol.test:owner:mallory');
    const cases: [string, EnrollNodeRequest, number, RegExp][] = [
      ['no chain', request(token, []), Status.INVALID_ARGUMENT, /owner_credential_chain is required/],
      [
        'rooted at another owner',
        request(token, await ownerChain({ issuer: stranger })),
        Status.PERMISSION_DENIED,
        /not at the node's owner/,
      ],
      [
        'issued to someone else',
        request(token, await ownerChain({ subjectKey: stranger.jwk as Record<string, unknown> })),
        Status.INVALID_ARGUMENT,
        /holder/,
      ],
      [
        'without sliver.delete',
        request(token, await ownerChain({ privileges: ['sliver.create', 'node.read'] })),
        Status.PERMISSION_DENIED,
        /sliver\.delete/,
      ],
      ['a private key', request(token, await ownerChain(), { publicKeyPem: parties.owner.keyPem }), Status.INVALID_ARGUMENT, /private key/],
      ['both key and CSR', request(token, await ownerChain(), { csrPem: 'x' }), Status.INVALID_ARGUMENT, /exactly one/],
      ['a bad endpoint', request(token, await ownerChain(), { endpoint: 'no-port' }), Status.INVALID_ARGUMENT, /endpoint/],
      ['no capacity', request(token, await ownerChain(), { capacity: undefined }), Status.INVALID_ARGUMENT, /capacity/],
    ];
    for (const [what, req, code, msg] of cases) {
      const err = await enrol(req).catch((e: unknown) => e);
      expect(codeOf(err), what).toBe(code);
      expect((err as Error).message, what).toMatch(msg);
    }
    expect(await tableSizes()).toEqual(before);
    // The token still works after all that.
    expect((await enrol(request(token, await ownerChain()))).nodeUrn).toMatch(/node:strict$/);
  });

  it('accepts a CSR signed by the node key and refuses one whose signature is bad', async () => {
    const token = await newToken('csr');
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
    const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=csr', keys, signingAlgorithm: alg });
    const pem = csr.toString('pem');
    // Flip a bit inside the signature (the last bytes of the DER): still well-formed, no longer valid.
    const der = Buffer.from(csr.rawData);
    der[der.length - 3] = (der[der.length - 3] as number) ^ 1;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    const bad = await enrol(request(token, await ownerChain(), { publicKeyPem: '', csrPem: tampered })).catch((e: unknown) => e);
    expect(codeOf(bad)).toBe(Status.INVALID_ARGUMENT);
    const res = await enrol(request(token, await ownerChain(), { publicKeyPem: '', csrPem: pem }));
    const spki = Buffer.from(await crypto.subtle.exportKey('spki', keys.publicKey));
    expect(Buffer.from(new X509Certificate(res.certificatePem).publicKey.export({ format: 'der', type: 'spki' })).equals(spki)).toBe(true);
  });

  it('lets owners make tokens for their own nodes only, and retries give a fresh token', async () => {
    const owner = site.maClient(parties.owner);
    const first = await owner.createEnrollmentToken({ requestId: 'own-1', nodeName: 'mine', ownerUrn: parties.owner.urn, ttlS: 0 });
    const stranger = await parties.pki.issue('urn:fedlab:enrol.test:owner:eve');
    const denied = await site
      .maClient(stranger)
      .createEnrollmentToken({ requestId: 'own-2', nodeName: 'theirs', ownerUrn: parties.owner.urn, ttlS: 0 })
      .catch((e: unknown) => e);
    expect(codeOf(denied)).toBe(Status.PERMISSION_DENIED);
    // The same request id again: a new token for the same node and expiry; the first one stops working.
    const second = await owner.createEnrollmentToken({ requestId: 'own-1', nodeName: 'mine', ownerUrn: parties.owner.urn, ttlS: 0 });
    expect(second.token).not.toBe(first.token);
    expect(second.expiresAt?.getTime()).toBe(first.expiresAt?.getTime());
    expect(codeOf(await enrol(request(first.token, await ownerChain())).catch((e: unknown) => e))).toBe(Status.UNAUTHENTICATED);
    expect((await enrol(request(second.token, await ownerChain()))).nodeUrn).toMatch(/node:mine$/);
    const other = await owner
      .createEnrollmentToken({ requestId: 'own-1', nodeName: 'other', ownerUrn: parties.owner.urn, ttlS: 0 })
      .catch((e: unknown) => e);
    expect(codeOf(other)).toBe(Status.ALREADY_EXISTS);
    const badName = await owner
      .createEnrollmentToken({ requestId: 'own-3', nodeName: '../etc', ownerUrn: parties.owner.urn, ttlS: 0 })
      .catch((e: unknown) => e);
    expect(codeOf(badName)).toBe(Status.INVALID_ARGUMENT);
  });
});

describe('enrolment with an intermediate CA given to the MA', () => {
  it('signs node certificates with the intermediate and returns the chain issuer first', async () => {
    const { X509Certificate: Cert } = await import('node:crypto');
    const { toCryptoKeyPair, x509: lib } = await import('../../certs/x509-provider.js');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadCa } = await import('../../certs/index.js');
    const root = await loadCa(parties.pki.caDir);
    const inter = generateKeyPair('p256');
    const rootKeys = await toCryptoKeyPair(root.privateKey);
    const interKeys = await toCryptoKeyPair(inter.privateKey);
    const now = Date.now();
    const cert = await lib.X509CertificateGenerator.create({
      serialNumber: '0a1b2c',
      subject: 'CN=Fedlab intermediate enrol.test',
      issuer: new lib.X509Certificate(root.certPem).subjectName,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 30 * 86_400_000),
      publicKey: interKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new lib.BasicConstraintsExtension(true, 0, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign, true),
        await lib.SubjectKeyIdentifierExtension.create(interKeys.publicKey),
      ],
    });
    const dir = mkdtempSync(join(tmpdir(), 'fedlab-inter-'));
    writeFileSync(join(dir, 'inter.pem'), cert.toString('pem'));
    writeFileSync(join(dir, 'inter.key'), inter.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    writeFileSync(join(dir, 'root.pem'), root.certPem);
    const other = await startSite({
      parties,
      clock,
      manualTimers: true,
      config: { enrolment: { ca_cert: join(dir, 'inter.pem'), ca_key: join(dir, 'inter.key'), ca_chain: join(dir, 'root.pem') } },
    });
    try {
      // The owner makes the token itself, so its key is known without the CA directory.
      const { token } = await other
        .maClient(parties.owner)
        .createEnrollmentToken({ requestId: 'i1', nodeName: 'inter', ownerUrn: parties.owner.urn, ttlS: 0 });
      const res = await enrollNode(
        { address: other.enrolAddress, caPem: parties.pki.caPem, maUrn: parties.maUrn },
        request(token, await ownerChain()),
      );
      expect(res.caChainPem).toHaveLength(2);
      const leaf = new Cert(res.certificatePem);
      expect(leaf.verify(new Cert(res.caChainPem[0]!).publicKey)).toBe(true);
      expect(new Cert(res.caChainPem[0]!).verify(new Cert(res.caChainPem[1]!).publicKey)).toBe(true);
      // An admin-made token cannot be checked here: the MA holds no CA directory to find the owner's key in.
      const adminToken = (
        await other.maClient().createEnrollmentToken({ requestId: 'i2', nodeName: 'inter2', ownerUrn: parties.owner.urn, ttlS: 0 })
      ).token;
      const err = await enrollNode(
        { address: other.enrolAddress, caPem: parties.pki.caPem, maUrn: parties.maUrn },
        request(adminToken, await ownerChain()),
      ).catch((e: unknown) => e);
      expect(codeOf(err)).toBe(Status.FAILED_PRECONDITION);
      expect((err as Error).message).toMatch(/owner make the token itself/);
    } finally {
      await other.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
