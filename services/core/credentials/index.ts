/**
 * Delegation credentials (docs/design.md §5): format v1, issuance, the one chain
 * verifier, trust anchors, revocation and the handler-side `authorize`.
 */
export { CREDENTIAL_RULES, CredentialDeniedError, CredentialInvalidError, DelegationRefusedError, isCredentialError } from './errors.js';
export type { CredentialError, CredentialFailure, CredentialRule } from './errors.js';
export {
  CLOCK_SKEW_S,
  CREDENTIAL_TYP,
  CREDENTIAL_VERSION,
  LIMIT_KEYS,
  MAX_CHAIN_BYTES,
  MAX_CHAIN_LINKS,
  NODE_PRIVILEGES,
  PRIVILEGES,
  chainBytes,
  INCARNATION,
  credentialHash,
  isPrivilege,
  parseCredential,
} from './format.js';
export type { CredentialClaims, CredentialHeader, LimitKey, Limits, ParsedCredential, Privilege } from './format.js';
export { attenuationProblem, effectiveIncarnation, effectiveLimits, incarnationProblem } from './attenuation.js';
export { DEFAULT_TTL_S, delegate, issueRoot, newJti } from './issue.js';
export type { DelegateOptions, IssueRootOptions, IssuedCredential } from './issue.js';
export { verifyChain } from './verify.js';
export type { ChainHolder, VerifyChainInput } from './verify.js';
export type { Grant } from './grant.js';
export { ChainCache, defaultChainCache } from './cache.js';
export type { ChainCacheOptions } from './cache.js';
export { TrustStore } from './trust-store.js';
export type { AddAnchorOptions, Anchor, PeeringPolicy, PeeringQuery, RootCheck } from './trust-store.js';
export {
  NO_REVOCATIONS,
  REVOCATION_TYP,
  RevocationSet,
  checkRevocationEntry,
  checkRevocationList,
  emptyRevocationList,
  isFresherList,
  parseSignedRevocationList,
  signRevocationList,
  staleListError,
  staleListMessage,
  withRevocation,
} from './revocation.js';
export type {
  RevocationEntry,
  RevocationFreshness,
  RevocationIndex,
  RevocationList,
  RevocationLookup,
  RevocationSetOptions,
  RevocationValidity,
  RevokedItem,
} from './revocation.js';
export {
  DEFAULT_GRACE_S,
  DEFAULT_NEXT_UPDATE_S,
  revocationConfigSchema,
  revocationSettings,
  validityAt,
  type RevocationSettings,
} from './revocation-config.js';
export { REVOCATION_TABLES, RevocationStore } from './revocation-store.js';
export { ledgerEntryToWire, RevocationLedger, revocationTarget } from './revocation-ledger.js';
export type { LedgerEntry, LedgerPage, LedgerQuery, RevocationLedgerOptions, RevocationTarget } from './revocation-ledger.js';
export { authorize } from './authorize.js';
export type { AuthorizeContext, AuthorizeDeps } from './authorize.js';
export { algOfJwk, thumbprintOf, toPublicJwk } from './keys.js';
export type { PublicJwk } from './keys.js';
