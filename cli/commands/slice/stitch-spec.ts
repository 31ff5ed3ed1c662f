/**
 * `fedlab slice create --stitch`: a link stitched between nodes of two sites, written
 * `NAME=SITE/CLIENT_ID,SITE/CLIENT_ID[@KBPS]` (the client ids those sites' --request files name).
 */
import { InvalidArgumentError } from '../../../services/core/errors.js';
import type { StitchedLink } from '../../../services/generated/fedlab/v1/slice_authority.js';

const SPEC = /^([A-Za-z0-9._-]{1,64})=([^/,@\s]+)\/([^,@\s]+),([^/,@\s]+)\/([^,@\s]+)(?:@(\d{1,12}))?$/;

/** Reads one --stitch value; INVALID_ARGUMENT saying the form when it is not one. */
export function parseStitchSpec(spec: string): StitchedLink {
  const m = SPEC.exec(spec);
  if (!m)
    throw new InvalidArgumentError(
      `--stitch ${JSON.stringify(spec.slice(0, 120))}: write NAME=SITE/CLIENT_ID,SITE/CLIENT_ID[@KBPS], e.g. wan0=plc.test/a,emu.test/b@20000 (the client ids of the sites' --request files)`,
      { field: '--stitch' },
    );
  const [, name, siteA, clientA, siteB, clientB, kbps] = m as unknown as [string, string, string, string, string, string, string?];
  return {
    name,
    endpoints: [
      { site: siteA, clientId: clientA },
      { site: siteB, clientId: clientB },
    ],
    bandwidthKbps: kbps === undefined ? 0 : Number(kbps),
    delayMs: 0,
    lossPercent: 0,
  };
}
