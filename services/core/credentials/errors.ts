/**
 * Credential errors. Every refusal names the link (0 = root) and the rule it
 * broke, so an operator can tell exactly which delegation to fix. A chain that
 * is missing, unreadable, badly signed, expired, untrusted, revoked or not held
 * by the caller is an {@link CredentialInvalidError} (UNAUTHENTICATED); a valid
 * chain that does not grant the call is a {@link CredentialDeniedError}
 * (PERMISSION_DENIED); an attempt to issue a delegation wider than its parent
 * is a {@link DelegationRefusedError} (PERMISSION_DENIED, before anything is signed).
 */
import { PermissionDeniedError, UnauthenticatedError } from '../errors.js';

/**
 * The rules a credential chain can break, in the order the verifier checks
 * them. The names are stable: they travel as the `fedlab-rule` trailer and
 * tests and tools match on them.
 */
export const CREDENTIAL_RULES = [
  // sizes, before anything else
  'missing',
  'size',
  // rule 1: every link on its own
  'format',
  'base64url',
  'json',
  'duplicate-key',
  'header',
  'alg',
  'typ',
  'version',
  'claims',
  'privilege',
  'not-yet-valid',
  'expired',
  // rule 2: the root
  'trust-anchor',
  'signature',
  // rule 3: every later link against its parent
  'prf',
  'issuer',
  'signer',
  'dlg',
  'priv',
  'tgt',
  'lim',
  'exp',
  'nbf',
  'inc',
  // rule 4
  'revoked',
  'revoked-key',
  // rule 5
  'holder-key',
  'holder-urn',
  // rule 6
  'grant-privilege',
  'grant-object',
  'grant-incarnation',
] as const;

/** One rule of {@link CREDENTIAL_RULES}. */
export type CredentialRule = (typeof CREDENTIAL_RULES)[number];

/** What every credential error carries besides its message. */
export interface CredentialFailure {
  /** Index of the failing link, 0 being the root (for `missing`, 0). */
  readonly link: number;
  readonly rule: CredentialRule;
}

function text(link: number, rule: CredentialRule, why: string): string {
  return `credential link ${link} fails rule ${rule}: ${why}`;
}

/** The chain is missing, unreadable, badly signed, expired, untrusted, revoked or not the caller's (UNAUTHENTICATED). */
export class CredentialInvalidError extends UnauthenticatedError implements CredentialFailure {
  readonly link: number;
  readonly rule: CredentialRule;
  /** The reason alone, without the "credential link N fails rule R" prefix. */
  readonly reason: string;

  constructor(link: number, rule: CredentialRule, why: string) {
    super(text(link, rule, why), { link, rule });
    this.link = link;
    this.rule = rule;
    this.reason = why;
  }
}

/** A valid chain that does not grant the privilege on the object the call needs (PERMISSION_DENIED). */
export class CredentialDeniedError extends PermissionDeniedError implements CredentialFailure {
  readonly link: number;
  readonly rule: CredentialRule;
  readonly reason: string;

  constructor(link: number, rule: CredentialRule, why: string) {
    super(text(link, rule, why), { link, rule });
    this.link = link;
    this.rule = rule;
    this.reason = why;
  }
}

/**
 * Issuing refused: the delegation would hold more than its parent (or the
 * signer does not hold the parent). `link` is the index the new link would have.
 */
export class DelegationRefusedError extends PermissionDeniedError implements CredentialFailure {
  readonly link: number;
  readonly rule: CredentialRule;
  readonly reason: string;

  constructor(link: number, rule: CredentialRule, why: string) {
    super(`delegation refused (would be link ${link}), rule ${rule}: ${why}`, { link, rule });
    this.link = link;
    this.rule = rule;
    this.reason = why;
  }
}

/** Any credential error. */
export type CredentialError = CredentialInvalidError | CredentialDeniedError | DelegationRefusedError;

/** True for any credential error (carries `link` and `rule`). */
export function isCredentialError(err: unknown): err is CredentialError {
  return err instanceof CredentialInvalidError || err instanceof CredentialDeniedError || err instanceof DelegationRefusedError;
}
