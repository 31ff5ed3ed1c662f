/** `fedlab slice create`: a slice over nodes of one or more sites, with progress per node. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isValidName } from '../../../services/core/identity/urn.js';
import { SliceMode, type SiteRequest } from '../../../services/generated/fedlab/v1/common.js';
import { Slice, SliceState } from '../../../services/generated/fedlab/v1/slice_authority.js';
import { action, CliExit, EXIT_FAILURE, printJson } from '../../cli-support.js';
import { parseDuration, parsePositiveInt, repeatable } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { CreateProgress } from './create-progress.js';
import { expectedNodes, imageFlag, parseRequestSpec, parseSiteSpec } from './request-specs.js';
import { saClient, withConn, type ConnFlags } from './sa-client.js';
import { failureLines, sliceDetail } from './slice-view.js';
import { sliceUserFromFlags } from './slice-user-flags.js';
import { parseStitchSpec } from './stitch-spec.js';
import { writeOut, writeErr } from '../../printable.js';

interface CreateFlags extends ConnFlags {
  sshKey: string[];
  user?: string;
  site: string[];
  request: string[];
  stitch: string[];
  exclusive?: boolean;
  cpuMillis?: string;
  memMb?: string;
  diskMb?: string;
  image?: string;
  lifetime?: string;
  mode: string;
  start: boolean;
  requestId?: string;
  description?: string;
  wait: boolean;
}

/** Registers `fedlab slice create`. */
export function registerSliceCreate(slice: Command): void {
  withConn(
    slice
      .command('create <name>')
      .description('create a slice over nodes of one or more sites, showing progress per node')
      .option(
        '--site <spec>',
        'DOMAIN=COUNT (nodes the site picks) or DOMAIN=NODE,NODE (named nodes); repeat per site',
        repeatable,
        [] as string[],
      )
      .option('--cpu-millis <n>', 'CPU per sliver in thousandths of a core (default: each site decides)')
      .option('--mem-mb <n>', 'memory per sliver in MiB')
      .option('--disk-mb <n>', 'disk per sliver in MiB')
      .option(
        '--image <name>',
        'root file system of each sliver of the --site requests: host (the default) or oci:<name>, an image the nodes offer (see ListResources); a --request file names it in resources.image',
      )
      .option('--exclusive', 'whole nodes for this slice (protogeni; emulab always gives whole nodes)')
      .option(
        '--request <spec>',
        "DOMAIN=FILE: the whole request for one site from a JSON file — nodes, resources, links (emulab) and exclusive in the API's JSON, or a fedlab-rspec+json request document; repeat per site",
        repeatable,
        [] as string[],
      )
      .option(
        '--stitch <spec>',
        'NAME=SITE/CLIENT_ID,SITE/CLIENT_ID[@KBPS]: a link stitched between nodes of two sites (client ids of their --request files); repeat per link',
        repeatable,
        [] as string[],
      )
      .option('--lifetime <duration>', 'how long the slice lives, e.g. 2h or 7d (default: the SA decides)')
      .addOption(
        new Option('--mode <mode>', 'what a partial failure does')
          .choices(['all-or-nothing', 'all', 'best-effort'])
          .default('all-or-nothing'),
      )
      .option('--no-start', 'provision the slivers but do not start them')
      .option('--no-wait', 'return once the SA recorded the request (follow it with `fedlab slice show`)')
      .option(
        '--ssh-key <file>',
        "an SSH public key (.pub file) that may log in to the slice's slivers; repeatable",
        repeatable,
        [] as string[],
      )
      .option('--user <urn>', 'whose --ssh-key it is (default: you, as your certificate names you)')
      .option('--request-id <id>', 'idempotency key (a retry with the same id returns the same slice)')
      .option('--description <text>', 'free text'),
  ).action(action(async (name: string, flags: CreateFlags) => create(name, flags)));
}

async function create(name: string, flags: CreateFlags): Promise<void> {
  if (!isValidName(name)) throw new InvalidArgumentError(`slice name ${JSON.stringify(name)} must match [a-z0-9][a-z0-9._-]{0,62}`);
  if (!flags.site.length && !flags.request.length)
    throw new InvalidArgumentError('give at least one --site DOMAIN=COUNT or DOMAIN=NODE,NODE, or --request DOMAIN=FILE');
  const specs = flags.site.map(parseSiteSpec);
  const files = flags.request.map((r) => parseRequestSpec(r, (file) => readFileSync(file, 'utf8')));
  const named = [...specs.map((s) => s.site), ...files.map((r) => r.site)];
  const twice = named.find((domain, i) => named.indexOf(domain) !== i);
  if (twice) throw new InvalidArgumentError(`site ${twice} is given twice; give each site once, with --site or with --request`);
  const num = (value: string | undefined, flag: string): number => (value === undefined ? 0 : parsePositiveInt(value, flag));
  const resources = {
    cpuMillis: num(flags.cpuMillis, '--cpu-millis'),
    memMb: num(flags.memMb, '--mem-mb'),
    diskMb: num(flags.diskMb, '--disk-mb'),
    pids: 0,
    bandwidthKbps: 0,
    ...(flags.image !== undefined ? { image: imageFlag(flags.image) } : {}),
  };
  const mode =
    flags.mode === 'all' || flags.mode === 'all-or-nothing'
      ? SliceMode.SLICE_MODE_ALL_OR_NOTHING
      : flags.mode === 'best-effort'
        ? SliceMode.SLICE_MODE_BEST_EFFORT
        : undefined;
  if (mode === undefined) throw new InvalidArgumentError(`--mode must be all-or-nothing or best-effort, got ${JSON.stringify(flags.mode)}`);
  const expiresAt = flags.lifetime ? new Date(Date.now() + parseDuration(flags.lifetime, '--lifetime') * 1000) : undefined;
  const sites: SiteRequest[] = [
    ...specs.map((s) => ({
      site: s.site,
      request: {
        nodes: { nodeUrns: s.nodeUrns, count: s.count, clientIds: [] },
        resources,
        links: [],
        exclusive: flags.exclusive === true,
        requestDocument: '',
        requestDocumentFormat: '',
      },
    })),
    ...files,
  ];
  const stitched = flags.stitch.map(parseStitchSpec);
  // Before any call: a bad key file changes nothing.
  const user = sliceUserFromFlags(flags);
  const client = saClient(flags);
  try {
    const requestId = flags.requestId ?? `cli-${randomBytes(8).toString('hex')}`;
    const res = await client
      .createSlice({
        users: user ? [user] : [],
        requestId,
        name,
        description: flags.description ?? '',
        mode,
        sites,
        ...(stitched.length ? { stitchedLinks: { links: stitched } } : {}),
        start: flags.start,
        wait: false,
        ...(expiresAt ? { expiresAt } : {}),
      })
      .catch((err: unknown) => refused(err, `cannot create slice ${name}`));
    let slice = res.slice as Slice;
    if (flags.wait && (slice.state === SliceState.SLICE_STATE_PENDING || slice.state === SliceState.SLICE_STATE_DELETING)) {
      const progress = new CreateProgress(!flags.json && process.stdout.isTTY === true);
      progress.expect(sites.reduce((n, s) => n + expectedNodes(s.request), 0));
      try {
        // Follows the slice until it is stable; no deadline beyond the sites' own (the SA bounds each site).
        // A new slice's record is event 1: replaying from there shows every node's events, even
        // those that happened before the watch was opened (a snapshot would skip them).
        for await (const event of client.watchSlice(
          { sliceUrn: slice.urn, afterSequence: 1, follow: false },
          { deadlineMs: 24 * 3_600_000 },
        )) {
          if (!flags.json && event.sequence > 0 && !(event.slice && event.message === 'snapshot')) progress.event(event);
          if (event.slice) slice = event.slice;
        }
      } catch (err) {
        refused(err, `lost track of slice ${slice.urn} (it goes on at the SA; see \`fedlab slice show\`)`);
      } finally {
        progress.end();
      }
      slice = (await client.getSlice({ sliceUrn: slice.urn }).catch((err: unknown) => refused(err, `cannot read slice ${slice.urn}`)))
        .slice as Slice;
    }
    if (flags.json) printJson(Slice.toJSON(slice));
    else writeOut(`${sliceDetail(slice)}\n`);
    if (slice.state === SliceState.SLICE_STATE_FAILED) {
      throw new CliExit(
        EXIT_FAILURE,
        `slice ${slice.urn} FAILED${slice.mode === SliceMode.SLICE_MODE_ALL_OR_NOTHING ? ' (all or nothing: every site was rolled back)' : ''}:\n  ${failureLines(slice).join('\n  ')}`,
      );
    }
    if (slice.state === SliceState.SLICE_STATE_PARTIAL)
      writeErr(`fedlab: slice ${slice.urn} is PARTIAL:\n  ${failureLines(slice).join('\n  ')}\n`);
  } finally {
    client.close();
  }
}
