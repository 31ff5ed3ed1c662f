/**
 * The certificates of a local federation, made with the admin cert tooling
 * (certs/): per site a CA, the MA's server certificate, an administrator and
 * a node owner; in the home domain also the slice authority, the service
 * provider, the provider's operator and a member; then each domain's trust
 * bundle (its CA and authority keys), whose fingerprint peers pin.
 */
import { readFileSync } from 'node:fs';
import { initCa, issueCertificate, writeBundle } from '../../certs/index.js';
import { homePaths, sitePaths, type SitePlan } from './plan.js';

const SERVER_NAMES = { dns: ['localhost'], ip: ['127.0.0.1'] } as const;

/** URNs of a site's principals. */
export function siteUrns(domain: string) {
  return {
    ma: `urn:fedlab:${domain}:authority:ma`,
    admin: `urn:fedlab:${domain}:user:admin`,
    owner: `urn:fedlab:${domain}:owner:alice`,
    node: (name: string) => `urn:fedlab:${domain}:node:${name}`,
  };
}

/** URNs of the home domain's slice authority, provider, operator and member. */
export function homeUrns(home: string) {
  return {
    sa: `urn:fedlab:${home}:authority:sa`,
    sp: `urn:fedlab:${home}:sp:demo`,
    operator: `urn:fedlab:${home}:user:operator`,
    member: `urn:fedlab:${home}:user:member`,
  };
}

/** Makes every site's CA, certificates and bundle under `dir` (a fresh directory). */
export async function makePki(dir: string, sites: readonly SitePlan[], home: string): Promise<void> {
  for (const site of sites) {
    const p = sitePaths(dir, site.domain);
    const urns = siteUrns(site.domain);
    await initCa({ domain: site.domain, outDir: p.ca });
    await issueCertificate({ caDir: p.ca, urn: urns.ma, outDir: p.ma, ...SERVER_NAMES });
    await issueCertificate({ caDir: p.ca, urn: urns.admin, outDir: p.admin });
    await issueCertificate({ caDir: p.ca, urn: urns.owner, outDir: p.owner });
    if (site.domain === home) {
      const h = homePaths(dir, home);
      const hu = homeUrns(home);
      await issueCertificate({ caDir: p.ca, urn: hu.sa, outDir: h.sa, ...SERVER_NAMES });
      await issueCertificate({ caDir: p.ca, urn: hu.sp, outDir: h.sp, ...SERVER_NAMES });
      await issueCertificate({ caDir: p.ca, urn: hu.operator, outDir: h.operator });
      await issueCertificate({ caDir: p.ca, urn: hu.member, outDir: h.member });
    }
    // The bundle lists every authority the CA issued (the MA, and the SA in the home domain).
    await writeBundle({ caDir: p.ca, outFile: p.bundle });
  }
}

/** TLS material of an identity directory (key.pem, cert.pem, ca.pem) for a client. */
export function tlsOfDir(idDir: string, extraCaPem = ''): { caCerts: string; cert: string; key: string } {
  return {
    caCerts: readFileSync(`${idDir}/ca.pem`, 'utf8') + extraCaPem,
    cert: readFileSync(`${idDir}/cert.pem`, 'utf8'),
    key: readFileSync(`${idDir}/key.pem`, 'utf8'),
  };
}
