/** The flags `fedlab cred issue` and `delegate` share, and what they set in a credential. */
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { parseDuration, parseTime } from '../../flag-values.js';
import { parseLimits } from './limits-flag.js';

/** Flags of a new credential. */
export interface IssueFlags {
  key: string;
  subjectCert: string;
  target?: string[];
  priv?: string;
  dlg?: string;
  ttl?: string;
  lim?: string;
  issuerCert?: string;
  notBefore?: string;
  out?: string;
  /** Replace an existing --out file. */
  force?: boolean;
}

function dlgFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value))
    throw new InvalidArgumentError(`--dlg must be a whole number (0: no further delegation), got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The credential fields the flags set (only those given). */
export function credentialFields(flags: IssueFlags) {
  return {
    ...(flags.dlg !== undefined ? { dlg: dlgFlag(flags.dlg) as number } : {}),
    ...(flags.ttl !== undefined ? { ttlSeconds: parseDuration(flags.ttl) } : {}),
    ...(flags.lim !== undefined ? { limits: parseLimits(flags.lim) } : {}),
    ...(flags.notBefore !== undefined ? { notBefore: parseTime(flags.notBefore, '--not-before') } : {}),
  };
}
