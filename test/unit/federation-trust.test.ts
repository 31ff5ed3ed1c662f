// Federation building blocks: the refresh continuity rule, peer records, CA → domain attribution,
// and the management authority's delegation policy.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCa, signLeafCertificate } from '../../certs/index.js';
import { toCryptoKeyPair, x509 as lib } from '../../certs/x509-provider.js';
import { commonConfigSchema, compileConfig, federationSettings } from '../../services/core/config.js';
import { bundleSucceeds } from '../../services/core/federation/bundle-client.js';
import { PeerTrust } from '../../services/core/federation/peer-trust.js';
import { PeerDirectory, parsePeerRecord, type PeerRecord } from '../../services/core/federation/peers.js';
import { bundleFingerprint, type TrustBundle } from '../../services/core/identity/trust-bundle.js';
import { identityFromCertificate } from '../../services/core/identity/certificate.js';
import { createLogger } from '../../services/core/log.js';
import { delegationRefusal } from '../../services/management-authority/delegations.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

const silent = createLogger({ level: 'silent' });
let plc: TestPki;
let emu: TestPki;
let emuBundle: TrustBundle;
let dir: string;

/** A CA certificate for a new key, signed by `pki`'s CA (a rollover announced under the old CA). */
async function crossSigned(pki: TestPki): Promise<string> {
  const root = await loadCa(pki.caDir);
  const next = generateKeyPair('p256');
  const rootKeys = await toCryptoKeyPair(root.privateKey);
  const nextKeys = await toCryptoKeyPair(next.privateKey);
  const cert = await lib.X509CertificateGenerator.create({
    serialNumber: '0badc0de',
    subject: `CN=Fedlab CA ${pki.domain} 2`,
    issuer: new lib.X509Certificate(root.certPem).subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: nextKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new lib.BasicConstraintsExtension(true, undefined, true),
      new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign, true),
      await lib.SubjectKeyIdentifierExtension.create(nextKeys.publicKey),
    ],
  });
  return cert.toString('pem');
}

function record(bundle: TrustBundle): PeerRecord {
  const fp = bundleFingerprint(bundle);
  const now = new Date().toISOString();
  return {
    v: 1,
    domain: bundle.domain,
    endpoint: '127.0.0.1:7000',
    pinned_fingerprint: fp,
    pinned_at: now,
    bundle,
    fingerprint: fp,
    accepted_at: now,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-fed-unit-'));
  plc = await makeTestPki('plc.test');
  emu = await makeTestPki('emu.test');
  await emu.issue('urn:fedlab:emu.test:authority:sa');
  emuBundle = (await emu.bundle()).bundle;
}, 60_000);

afterAll(async () => {
  await plc?.cleanup();
  await emu?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('bundleSucceeds (what a refresh accepts)', () => {
  it('accepts a higher serial that keeps a CA, or adds a CA signed by a trusted one', async () => {
    expect(bundleSucceeds(emuBundle, { ...emuBundle, serial: emuBundle.serial + 1, authorities: [] })).toBeUndefined();
    const rolled = await crossSigned(emu);
    expect(bundleSucceeds(emuBundle, { ...emuBundle, serial: emuBundle.serial + 1, ca_certs: [rolled] })).toBeUndefined();
  });

  it('refuses the same or a lower serial, another domain, and a CA that does not chain from the trusted bundle', async () => {
    expect(bundleSucceeds(emuBundle, { ...emuBundle })).toMatch(/not higher/);
    expect(bundleSucceeds(emuBundle, { ...emuBundle, serial: emuBundle.serial - 1 })).toMatch(/not higher/);
    expect(bundleSucceeds(emuBundle, { ...emuBundle, domain: 'plc.test', serial: 99 })).toMatch(/of plc\.test/);
    const other = await makeTestPki('emu.test');
    try {
      expect(bundleSucceeds(emuBundle, { ...emuBundle, serial: emuBundle.serial + 1, ca_certs: [other.caPem] })).toMatch(/re-pin/);
      // A CA that is signed by an unrelated CA does not chain either.
      expect(bundleSucceeds(emuBundle, { ...emuBundle, serial: emuBundle.serial + 1, ca_certs: [await crossSigned(other)] })).toMatch(
        /re-pin/,
      );
    } finally {
      await other.cleanup();
    }
  });
});

describe('peer records', () => {
  it('round-trip, and a tampered record is refused', async () => {
    const peers = new PeerDirectory(join(dir, 'p1'));
    await peers.put(record(emuBundle));
    expect((await peers.get('emu.test'))?.fingerprint).toBe(bundleFingerprint(emuBundle));
    const text = JSON.stringify({ ...record(emuBundle), fingerprint: `sha256:${'1'.repeat(64)}` });
    await expect(parsePeerRecord(text)).rejects.toThrow(/not the fingerprint of its bundle/);
    await expect(parsePeerRecord(JSON.stringify({ ...record(emuBundle), extra: 1 }))).rejects.toThrow(/unknown field/);
    await expect(parsePeerRecord(JSON.stringify({ ...record(emuBundle), domain: 'plc.test' }))).rejects.toThrow(/bundle is of emu\.test/);
    // A record stored under another domain's file name is not trusted.
    writeFileSync(join(dir, 'p1', 'geni.test.json'), JSON.stringify(record(emuBundle)));
    const { records, errors } = await peers.list();
    expect(records.map((r) => r.domain)).toEqual(['emu.test']);
    expect(errors[0]?.error).toMatch(/must be emu\.test\.json/);
  });
});

describe('PeerTrust', () => {
  it('attributes a certificate to the domain of the CA that issued it, and refuses names of other domains', async () => {
    const self = await plc.issueServer('urn:fedlab:plc.test:authority:sa');
    const peersDir = join(dir, 'p2');
    const trust = await PeerTrust.open({
      domain: 'plc.test',
      tls: { caCerts: plc.caPem, cert: self.certPem, key: self.keyPem },
      peersDir,
      log: silent,
    });
    const emuSa = await emu.issue('urn:fedlab:emu.test:authority:sa');
    // Not peered: emu's CA vouches for nothing here. The same identity object (as a connection's calls
    // and session messages present it) is checked again after each change of the trust, never from a stale verdict.
    const emuId = await idOf(emuSa.certPem);
    expect(trust.checkClient.bind(trust, emuId)).toThrow();
    expect(trust.checkClient.bind(trust, emuId)).toThrow();
    await new PeerDirectory(peersDir).put(record(emuBundle));
    expect(await trust.reload()).toBe(true);
    expect(trust.checkClient.bind(trust, emuId)).not.toThrow();
    expect(await new PeerDirectory(peersDir).remove('emu.test')).toBe(true);
    expect(await trust.reload()).toBe(true);
    expect(trust.checkClient.bind(trust, emuId)).toThrow(/in no trusted bundle|vouches only/);
    await new PeerDirectory(peersDir).put(record(emuBundle));
    expect(await trust.reload()).toBe(true);
    expect(trust.caPem()).toContain(emu.caPem.trim().split('\n')[1]);
    expect(trust.issuerDomains(new X509Certificate(emuSa.certPem))).toEqual(['emu.test']);
    expect(trust.checkClient.bind(trust, await idOf(emuSa.certPem))).not.toThrow();
    expect(trust.checkClient.bind(trust, await idOf(self.certPem))).not.toThrow();
    const ca = await loadCa(emu.caDir);
    const keys = generateKeyPair('p256');
    const forged = await signLeafCertificate(
      { ...ca, domain: 'plc.test' },
      { urn: 'urn:fedlab:plc.test:authority:ma', publicKey: keys.publicKey, dns: [], ip: [], days: 1 },
    );
    expect(trust.checkClient.bind(trust, await idOf(forged.certPem))).toThrow(
      /issued by the CA of emu\.test; a domain's CA vouches only for its own domain's names/,
    );
    expect(trust.trustStore.domains()).toEqual(['emu.test']);

    // The same check on a server certificate, over a real TLS connection: the chain verifies, the name does not.
    const serve = async (certPem: string, keyPem: string): Promise<Error | undefined> => {
      const server = createTlsServer({ cert: certPem, key: keyPem }, (s) => s.end());
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as { port: number }).port;
      try {
        return await new Promise<Error | undefined>((resolve) => {
          const sock = tlsConnect(
            {
              host: '127.0.0.1',
              port,
              ca: trust.caPem(),
              servername: 'localhost',
              checkServerIdentity: (_h, cert) => trust.checkServer(cert),
            },
            () => {
              sock.end();
              resolve(undefined);
            },
          );
          sock.on('error', (err) => resolve(err));
        });
      } finally {
        server.close();
      }
    };
    const emuServer = await emu.issueServer('urn:fedlab:emu.test:authority:ma');
    expect(await serve(emuServer.certPem, emuServer.keyPem)).toBeUndefined();
    const forgedKey = keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect((await serve(forged.certPem, forgedKey))?.message).toMatch(
      /server certificate names urn:fedlab:plc\.test:authority:ma, but it is issued by the CA of emu\.test/,
    );
    await trust.stop();
  });
});

describe('PeerTrust server check', () => {
  it('does not follow a chain linked by name only: a peer CA named like ours cannot borrow our CA', async () => {
    // emu.test makes a CA with our CA's subject name, and a server certificate naming our MA with no
    // key identifiers; the server then sends our (public) CA certificate after it.
    const evil = generateKeyPair('p256');
    const evilKeys = await toCryptoKeyPair(evil.privateKey);
    const ourName = new lib.X509Certificate(plc.caPem).subjectName;
    const evilCa = await lib.X509CertificateGenerator.create({
      serialNumber: '01ce',
      subject: ourName,
      issuer: ourName,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      publicKey: evilKeys.publicKey,
      signingKey: evilKeys.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new lib.BasicConstraintsExtension(true, undefined, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign, true),
      ],
    });
    const leafKeys = await toCryptoKeyPair(generateKeyPair('p256').privateKey);
    const leaf = await lib.X509CertificateGenerator.create({
      serialNumber: '02ce',
      subject: 'CN=ma',
      issuer: ourName,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      publicKey: leafKeys.publicKey,
      signingKey: evilKeys.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new lib.BasicConstraintsExtension(false, undefined, true),
        new lib.SubjectAlternativeNameExtension([{ type: 'url', value: 'urn:fedlab:plc.test:authority:ma' }]),
      ],
    });
    const self = await plc.issueServer('urn:fedlab:plc.test:authority:sa');
    const peersDir = join(dir, 'p3');
    await new PeerDirectory(peersDir).put(record({ ...emuBundle, ca_certs: [evilCa.toString('pem')] }));
    const trust = await PeerTrust.open({
      domain: 'plc.test',
      tls: { caCerts: plc.caPem, cert: self.certPem, key: self.keyPem },
      peersDir,
      log: silent,
    });
    try {
      const ourCa = { raw: new X509Certificate(plc.caPem).raw } as Record<string, unknown>;
      ourCa.issuerCertificate = ourCa;
      // What Node's getPeerCertificate(true) gives when it links the leaf to our CA by name.
      const peerCert = {
        raw: Buffer.from(leaf.rawData),
        subjectaltname: 'URI:urn:fedlab:plc.test:authority:ma',
        issuerCertificate: ourCa,
      } as never;
      expect(trust.checkServer(peerCert)?.message).toMatch(
        /issued by the CA of emu\.test; a domain's CA vouches only for its own domain's names/,
      );
      // A genuine server of ours passes the same check.
      const ours = { raw: new X509Certificate(self.certPem).raw, subjectaltname: `URI:${self.urn}`, issuerCertificate: ourCa } as never;
      expect(trust.checkServer(ours)).toBeUndefined();
    } finally {
      await trust.stop();
    }
  });
});

describe('federation config', () => {
  it('is optional, defaults the peers directory beside the trust bundle, and refuses unknown keys', () => {
    const cfgDir = mkdtempSync(join(tmpdir(), 'fedlab-fed-cfg-'));
    try {
      const base = {
        role: 'sa',
        urn: 'urn:fedlab:plc.test:authority:sa',
        listen: { port: 0 },
        tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' },
        trust_bundle: 'pki/bundle.json',
        data_dir: 'data',
      };
      writeFileSync(join(cfgDir, 'a.json'), JSON.stringify(base));
      const a = compileConfig(commonConfigSchema, { file: join(cfgDir, 'a.json') });
      expect(federationSettings(a)).toMatchObject({
        peersDir: join(cfgDir, 'pki', 'peers'),
        reloadIntervalMs: 2000,
        refreshIntervalS: 900,
      });
      writeFileSync(
        join(cfgDir, 'b.json'),
        JSON.stringify({ ...base, federation: { peers_dir: 'shared/peers', bundle_listen: { port: 7009 }, refresh_interval_s: 0 } }),
      );
      const b = compileConfig(commonConfigSchema, { file: join(cfgDir, 'b.json') });
      expect(federationSettings(b)).toMatchObject({
        peersDir: join(cfgDir, 'shared', 'peers'),
        bundleListen: { host: '127.0.0.1', port: 7009 },
        refreshIntervalS: 0,
      });
      writeFileSync(join(cfgDir, 'c.json'), JSON.stringify({ ...base, federation: { peer_dir: 'x' } }));
      expect(() => compileConfig(commonConfigSchema, { file: join(cfgDir, 'c.json') })).toThrow(/unknown key "peer_dir" in federation/);
    } finally {
      rmSync(cfgDir, { recursive: true, force: true });
    }
  });
});

describe('delegation policy', () => {
  it('allows the own domain by default and listed peers by domain or URN', () => {
    const policy = { allowOwnDomain: true, allow: ['emu.test', 'urn:fedlab:geni.test:authority:sa'] };
    expect(delegationRefusal(policy, 'plc.test', 'urn:fedlab:plc.test:authority:sa')).toBeUndefined();
    expect(delegationRefusal(policy, 'plc.test', 'urn:fedlab:emu.test:authority:any')).toBeUndefined();
    expect(delegationRefusal(policy, 'plc.test', 'urn:fedlab:geni.test:authority:sa')).toBeUndefined();
    expect(delegationRefusal(policy, 'plc.test', 'urn:fedlab:geni.test:authority:sa2')).toMatch(/lists neither geni\.test nor/);
    expect(delegationRefusal({ allowOwnDomain: false, allow: [] }, 'plc.test', 'urn:fedlab:plc.test:authority:sa')).toMatch(
      /allow_own_domain is false/,
    );
  });
});

function idOf(pem: string) {
  return identityFromCertificate(new X509Certificate(pem));
}
