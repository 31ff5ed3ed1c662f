// `fedlab slice create --stitch NAME=SITE/CLIENT_ID,SITE/CLIENT_ID[@KBPS]`: read into a StitchedLink, a bad value
// refused with the form to write.
import { describe, expect, it } from 'vitest';
import { nameNodes, siteRequests } from '../../cli/commands/provider/site-requests.js';
import { parseStitchSpec } from '../../cli/commands/slice/stitch-spec.js';
import { InvalidArgumentError } from '../../services/core/errors.js';

describe('--stitch', () => {
  it('reads the link, its two endpoints and the bandwidth', () => {
    expect(parseStitchSpec('wan0=plc.test/a,emu.test/b@20000')).toEqual({
      name: 'wan0',
      endpoints: [
        { site: 'plc.test', clientId: 'a' },
        { site: 'emu.test', clientId: 'b' },
      ],
      bandwidthKbps: 20000,
      delayMs: 0,
      lossPercent: 0,
    });
    expect(parseStitchSpec('w=x.test/n1,y.test/n2').bandwidthKbps).toBe(0);
  });

  it('refuses what is not of that form, saying the form', () => {
    for (const bad of ['wan0', 'wan0=plc.test/a', 'wan0=plc.test/a,emu.test', 'wan0=a,b', 'bad name=x/a,y/b', 'w=x/a,y/b@fast'])
      expect(() => parseStitchSpec(bad)).toThrow(InvalidArgumentError);
    expect(() => parseStitchSpec('wan0')).toThrow(/NAME=SITE\/CLIENT_ID,SITE\/CLIENT_ID\[@KBPS\]/);
  });
});

describe('fedlab deploy --stitch names the nodes it asks for', () => {
  it('0..COUNT-1 for --site DOMAIN=COUNT, the node name for --node URN', () => {
    const sites = siteRequests(['plc.test=2'], ['urn:fedlab:emu.test:node:pc7'], { cpuMillis: 0, memMb: 0, diskMb: 0 });
    nameNodes(sites);
    expect(sites.map((s) => [s.site, s.request?.nodes?.clientIds])).toEqual([
      ['plc.test', ['0', '1']],
      ['emu.test', ['pc7']],
    ]);
  });
});
