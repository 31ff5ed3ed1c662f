/**
 * The URI subjectAltNames of a DER X.509 certificate, read by walking its
 * ASN.1 straight to the one extension that holds them (RFC 5280 4.1 and
 * 4.2.1.6). A peer's identity is read from these on every new connection,
 * and a general ASN.1 decoder (@peculiar/x509 over asn1js) took about 0.7 ms
 * of CPU a certificate here, most of what a connection cost a server beyond
 * its TLS handshake; this walk takes microseconds.
 *
 * Strict where it matters for an identity: definite lengths only (a long
 * form of at most four bytes; a non-minimal one is read as OpenSSL reads it),
 * every element inside its parent, every TBSCertificate field in its place,
 * the extension once (RFC 5280 allows one) with nothing after its value, each
 * GeneralName one of the choices in its DER form, a URI in IA5 (7-bit).
 * Anything else that does not decode is an error, never an empty answer. It
 * reads, it does not validate: every caller has parsed the certificate with
 * OpenSSL (Node's X509Certificate) first, and a peer's chain was verified by
 * the TLS handshake.
 */

/** A DER element: its tag byte and where its contents are. */
interface Element {
  readonly tag: number;
  /** Offset of the contents. */
  readonly start: number;
  /** Offset just past the contents. */
  readonly end: number;
}

/** The DER of a certificate could not be read. */
export class DerError extends Error {}

/** The OID 2.5.29.17 (subjectAltName), as its DER contents. */
const SAN_OID = [0x55, 0x1d, 0x11];

const SEQUENCE = 0x30;
const OID = 0x06;
const BOOLEAN = 0x01;
const OCTET_STRING = 0x04;
/** [3] EXPLICIT, constructed: the extensions of a v3 certificate. */
const EXTENSIONS = 0xa3;
/** [6] IMPLICIT IA5String, primitive: GeneralName's uniformResourceIdentifier. */
const URI = 0x86;
/**
 * The tags of GeneralName's choices (RFC 5280 4.2.1.6), each in the one form DER gives it: otherName [0],
 * x400Address [3], directoryName [4] (EXPLICIT) and ediPartyName [5] constructed; the strings, iPAddress and
 * registeredID primitive. Anything else — a URI in constructed form (0xa6), which OpenSSL reads as a URI
 * too, or a tag outside the choice — is refused rather than skipped: skipping it would name a different
 * principal than OpenSSL and every other reader of the certificate sees.
 */
const GENERAL_NAME_TAGS = new Set([0xa0, 0x81, 0x82, 0xa3, 0xa4, 0xa5, URI, 0x87, 0x88]);

/** Reads the element at `at`, which must end by `limit`. */
function element(der: Uint8Array, at: number, limit: number): Element {
  if (at + 2 > limit) throw new DerError('truncated element');
  const tag = der[at] as number;
  // Multi-byte tags never occur in a certificate's structure.
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag number');
  let len = der[at + 1] as number;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // 0x80 is BER's indefinite length; four bytes of length is far beyond any certificate.
    if (n === 0 || n > 4) throw new DerError('unsupported length');
    if (start + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[start + i] as number);
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new DerError('element overruns its parent');
  return { tag, start, end };
}

/** The elements directly inside `parent`, which must fill it exactly. */
function children(der: Uint8Array, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.start; at < parent.end;) {
    const e = element(der, at, parent.end);
    out.push(e);
    at = e.end;
  }
  return out;
}

function expectTag(e: Element | undefined, tag: number, what: string): Element {
  if (!e || e.tag !== tag) throw new DerError(`${what} missing`);
  return e;
}

function sameBytes(der: Uint8Array, e: Element, bytes: readonly number[]): boolean {
  if (e.end - e.start !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (der[e.start + i] !== bytes[i]) return false;
  return true;
}

/** Tags of the TBSCertificate's fields, in order, after the optional version: each one once at most, none skipped. */
const TBS_FIELDS: readonly { readonly tags: readonly number[]; readonly optional: boolean }[] = [
  { tags: [0x02], optional: false }, // serialNumber
  { tags: [SEQUENCE], optional: false }, // signature
  { tags: [SEQUENCE], optional: false }, // issuer
  { tags: [SEQUENCE], optional: false }, // validity
  { tags: [SEQUENCE], optional: false }, // subject
  { tags: [SEQUENCE], optional: false }, // subjectPublicKeyInfo
  { tags: [0x81, 0xa1], optional: true }, // issuerUniqueID
  { tags: [0x82, 0xa2], optional: true }, // subjectUniqueID
  { tags: [EXTENSIONS], optional: true }, // extensions
];

/**
 * The `[3]` extensions element of a TBSCertificate, undefined when it has none. Every field is checked to be
 * where RFC 5280 puts it, so that a misread length cannot slide the walk onto other bytes and find no extension.
 */
function extensionsOf(der: Uint8Array, tbs: Element): Element | undefined {
  const fields = children(der, tbs);
  let i = 0;
  if (fields[0]?.tag === 0xa0) {
    // [0] EXPLICIT Version: exactly one INTEGER.
    const v = children(der, fields[0]);
    if (v.length !== 1 || v[0]?.tag !== 0x02) throw new DerError('a malformed version');
    i = 1;
  }
  let extensions: Element | undefined;
  for (const field of TBS_FIELDS) {
    const e = fields[i];
    if (e && field.tags.includes(e.tag)) {
      if (e.tag === EXTENSIONS) extensions = e;
      i++;
    } else if (!field.optional) throw new DerError('a TBSCertificate field missing or out of place');
  }
  if (i !== fields.length) throw new DerError('a TBSCertificate with fields out of place');
  return extensions;
}

/**
 * The URI subjectAltNames of a DER certificate, in order (none when it has no subjectAltName extension).
 * Throws {@link DerError} when the certificate does not decode as described in the module's comment.
 */
export function uriSansFromDer(der: Uint8Array): string[] {
  const cert = expectTag(element(der, 0, der.length), SEQUENCE, 'certificate');
  if (cert.end !== der.length) throw new DerError('bytes after the certificate');
  const tbs = expectTag(children(der, cert)[0], SEQUENCE, 'tbsCertificate');
  const extensions = extensionsOf(der, tbs);
  if (!extensions) return [];
  const inside = children(der, extensions);
  if (inside.length !== 1) throw new DerError('an extension list that is not one SEQUENCE');
  const list = expectTag(inside[0], SEQUENCE, 'extension list');
  let san: Element | undefined;
  for (const ext of children(der, list)) {
    const parts = children(der, expectTag(ext, SEQUENCE, 'extension'));
    const oid = expectTag(parts[0], OID, 'extension id');
    if (!sameBytes(der, oid, SAN_OID)) continue;
    if (san) throw new DerError('two subjectAltName extensions');
    // extnID, optional critical BOOLEAN, extnValue OCTET STRING holding the GeneralNames; nothing more.
    const critical = parts[1]?.tag === BOOLEAN;
    if (parts.length !== (critical ? 3 : 2)) throw new DerError('a subjectAltName extension with elements out of place');
    const value = expectTag(critical ? parts[2] : parts[1], OCTET_STRING, 'extension value');
    san = expectTag(element(der, value.start, value.end), SEQUENCE, 'GeneralNames');
    if (san.end !== value.end) throw new DerError('bytes after the GeneralNames');
  }
  if (!san) return [];
  const uris: string[] = [];
  for (const name of children(der, san)) {
    if (!GENERAL_NAME_TAGS.has(name.tag)) throw new DerError(`a GeneralName with tag 0x${name.tag.toString(16)}`);
    if (name.tag !== URI) continue;
    let text = '';
    for (let i = name.start; i < name.end; i++) {
      const c = der[i] as number;
      if (c > 0x7f) throw new DerError('a URI that is not IA5String');
      text += String.fromCharCode(c);
    }
    uris.push(text);
  }
  return uris;
}
