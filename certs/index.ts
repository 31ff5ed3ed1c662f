/**
 * The admin certificate tooling as a library (docs/design.md §4): domain CAs,
 * principals' certificates, trust bundles, inspection, and a one-call test PKI.
 * `fedlab certs` (cli/commands/certs.ts) is a thin layer over these.
 */
export { CA_FILES, DEFAULT_CA_DAYS, caCommonName, createCaMaterial, holdsCa, initCa, loadCa, readCaState } from './ca.js';
export type { CaMaterial, CaState, CreateCaOptions, InitCaOptions, InitCaResult, IssuedRecord, LoadedCa } from './ca.js';
export { DEFAULT_LEAF_DAYS, ISSUED_FILES, issueCertificate, signLeafCertificate } from './issue.js';
export type { IssueOptions, IssueResult, LeafRequest, SignedLeaf } from './issue.js';
export { buildBundle, writeBundle } from './bundle.js';
export type { BuildBundleOptions, BuiltBundle, BundleAuthoritySource, WriteBundleOptions } from './bundle.js';
export { inspectBundle, inspectCertificate, inspectFile } from './inspect.js';
export type { BundleReport, CertificateReport, InspectReport } from './inspect.js';
export { createTestPki } from './test-pki.js';
export type { TestIdentity, TestIssueOptions, TestPki, TestPkiOptions } from './test-pki.js';
export { KEY_ALG_NAMES, MAX_DAYS, checkAlg, checkDays, checkDnsNames, checkIpAddresses, normalizeSerial, randomSerial } from './names.js';
export { checkOutputFile, writeOutputFile } from './output-file.js';
export type { OutputFileOptions } from './output-file.js';
