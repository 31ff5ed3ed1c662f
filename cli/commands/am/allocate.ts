/**
 * `fedlab am allocate`: holds resources for a slice from a request file — a ResourceRequest as JSON
 * (`{"nodes": {"count": 2}, "resources": {"memMb": 128}}`) or a request document (a JSON document with
 * `"type": "request"`, or any file with --document-format) — all or nothing, until the hold ends.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, parseUrn } from '../../../services/core/identity/urn.js';
import { AggregateAllocateResponse } from '../../../services/generated/fedlab/v1/aggregate.js';
import { ResourceRequest } from '../../../services/generated/fedlab/v1/common.js';
import { action, printJson, readFlagFile } from '../../cli-support.js';
import { parseTime, repeatable } from '../../flag-values.js';
import { writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { sliceUserFromFlags } from '../slice/slice-user-flags.js';
import { amChain, withAm, withAmClient, type AmFlags } from './am-client.js';
import { sliverTable } from './am-view.js';

interface AllocateFlags extends AmFlags {
  slice: string;
  provider: string;
  request: string;
  documentFormat?: string;
  requestId?: string;
  expires?: string;
  sshKey: string[];
  user?: string;
}

/** The ResourceRequest a request file holds. */
export function requestFromFile(file: string, documentFormat: string | undefined): ResourceRequest {
  const text = readFlagFile(file, '--request');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const isDocument = documentFormat !== undefined || parsed === undefined || (parsed as { type?: unknown } | null)?.type === 'request';
  if (isDocument)
    return { links: [], exclusive: false, requestDocument: text, requestDocumentFormat: documentFormat ?? 'fedlab-rspec+json' };
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError(`--request ${file} must hold a ResourceRequest object or a request document`);
  try {
    return ResourceRequest.fromJSON(parsed);
  } catch (err) {
    throw new InvalidArgumentError(`--request ${file}: not a ResourceRequest (${(err as Error).message})`);
  }
}

/** Registers `fedlab am allocate`. */
export function registerAmAllocate(am: Command): void {
  withAm(
    am
      .command('allocate')
      .description('hold resources for a slice (all or nothing) from a request file, until provisioned or the hold ends')
      .requiredOption('--slice <urn>', 'the slice (its domain is your slice authority’s)')
      .requiredOption('--provider <urn>', 'the service provider that owns the slice')
      .requiredOption('--request <file>', 'a ResourceRequest as JSON, or a request document')
      .option(
        '--document-format <format>',
        'the request file is a document in this format (default fedlab-rspec+json when it says "type": "request")',
      )
      .option('--request-id <id>', 'idempotency key (default: a new one)')
      .option('--expires <time>', 'expiry once provisioned (RFC 3339 or epoch seconds; default the site’s)')
      .option('--ssh-key <file>', 'a slice user’s SSH public key (repeatable)', repeatable, [])
      .option('--user <urn>', 'whose --ssh-key it is (default: you)'),
    true,
  ).action(
    action(async (flags: AllocateFlags) => {
      if (!isUrn(flags.slice) || parseUrn(flags.slice).kind !== 'slice')
        throw new InvalidArgumentError(`--slice ${JSON.stringify(flags.slice)} is not a slice URN`);
      if (!isUrn(flags.provider)) throw new InvalidArgumentError(`--provider ${JSON.stringify(flags.provider)} is not a URN`);
      const request = requestFromFile(flags.request, flags.documentFormat);
      const user = sliceUserFromFlags(flags);
      const chain = amChain(flags);
      const req = {
        requestId: flags.requestId ?? randomUUID(),
        sliceUrn: flags.slice,
        providerUrn: flags.provider,
        request,
        users: user ? [user] : [],
        ...(flags.expires ? { expiresAt: parseTime(flags.expires, '--expires') } : {}),
      };
      const res = await withAmClient(flags, (c) => c.allocate(req, { chain }).catch((err: unknown) => refused(err, 'allocate failed')));
      if (flags.json) printJson(AggregateAllocateResponse.toJSON(res));
      else writeOut(`${sliverTable(res.slivers)}\n`);
    }),
  );
}
