/**
 * The JSON error object a command prints on stderr with `--json`: `code` (a gRPC status name for a
 * failed call, `USAGE` or `FAILED` for the CLI's own refusals), the `rule`, `link`, `site` and `node`
 * the failure names (empty when it names none) and the `message`. A failed call's fields come from
 * its metadata, read once by `refused` in remote.ts, which throws a {@link CliExit} that carries them.
 */
import { FedlabError } from '../services/core/errors.js';

/** The fields of an error object besides its message. */
export interface ErrorFields {
  readonly code: string;
  readonly rule: string;
  readonly link: string;
  readonly site: string;
  readonly node: string;
}

/** The JSON error object. */
export interface ErrorObject extends ErrorFields {
  readonly message: string;
}

/** An error that carries its own exit code and message (e.g. `cred verify` → 1), and for a failed call the fields of its JSON object. */
export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    readonly fields?: ErrorFields,
  ) {
    super(message);
  }
}

function text(v: unknown): string {
  return v === undefined || v === null ? '' : String(v);
}

/** The error object of `err`, whose message is `message` and exit code `exitCode` (2 usage, else failure). */
export function errorObject(err: unknown, message: string, exitCode: number): ErrorObject {
  if (err instanceof CliExit && err.fields) return { ...err.fields, message };
  if (err instanceof FedlabError) {
    const d = err.details;
    return {
      code: err.kind.toUpperCase(),
      rule: text(d.rule),
      link: text(d.link),
      site: text(d.site),
      node: text(d.node),
      message,
    };
  }
  return { code: exitCode === 2 ? 'USAGE' : 'FAILED', rule: '', link: '', site: '', node: '', message };
}
