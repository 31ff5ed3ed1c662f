// fast-check arbitraries for the wire fuzzer: any message of the API with random field values (read from
// its descriptor, so a new field is fuzzed without being named), strings that are often URNs of objects
// that exist, and mutations of valid request bytes (bit flips, overwrites, inserts, deletions, cuts,
// repeats).
import { create, ScalarType, toBinary, type DescField, type DescMessage } from '@bufbuild/protobuf';
import fc, { type Arbitrary } from 'fast-check';

/** How deep nested messages go (deeper fields are left unset). */
const MAX_DEPTH = 3;

const KINDS = ['node', 'slice', 'sliver', 'sp', 'user', 'owner', 'authority', 'x'];
const DOMAINS = ['a.test', 'b.test', 'c.test', 'A.TEST', 'a..test', ''];

/** Strings a server may trip on: empty, blank, control and non-BMP characters, separators, long ones. */
const NASTY = ['', ' ', '\u0000', '\n', 'é', '\u{1F600}', '../../etc/passwd', '%00', ',', 'urn:fedlab:', '*', 'a'.repeat(200)];

/** Random strings, URN-shaped strings and, often, the given known ones (URNs of real objects, names). */
export function stringArbitrary(known: readonly string[]): Arbitrary<string> {
  const urn = fc
    .tuple(
      fc.constantFrom(...DOMAINS),
      fc.constantFrom(...KINDS),
      fc.oneof(fc.constantFrom('n1', 'main', '*', 'x'), fc.string({ maxLength: 20 })),
    )
    .map(([d, k, n]) => `urn:fedlab:${d}:${k}:${n}`);
  return fc.oneof(
    { weight: 3, arbitrary: known.length ? fc.constantFrom(...known) : fc.constant('') },
    { weight: 2, arbitrary: urn },
    { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
    { weight: 1, arbitrary: fc.constantFrom(...NASTY) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 70_000 }).map((n) => 'x'.repeat(n)) },
  );
}

function int64(signed: boolean): Arbitrary<bigint> {
  return signed
    ? fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.constantFrom(0n, -1n, 1n, 2n ** 53n))
    : fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 1n, 2n ** 53n, 2n ** 64n - 1n));
}

function scalar(type: ScalarType, strings: Arbitrary<string>): Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return strings;
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.double();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.integer(), fc.constantFrom(0, -1, 2 ** 31 - 1, -(2 ** 31)));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.nat({ max: 2 ** 32 - 1 }), fc.constantFrom(0, 1, 50, 200, 2 ** 32 - 1));
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return int64(true);
    default:
      return int64(false);
  }
}

function single(field: DescField, depth: number, strings: Arbitrary<string>): Arbitrary<unknown> {
  if (field.fieldKind === 'list') {
    const item =
      field.listKind === 'message'
        ? messageInit(field.message, depth + 1, strings)
        : field.listKind === 'enum'
          ? enumValue(field.enum.values.map((v) => v.number))
          : scalar(field.scalar, strings);
    return fc.array(item, { maxLength: 4 });
  }
  if (field.fieldKind === 'map') {
    const value =
      field.mapKind === 'message'
        ? messageInit(field.message, depth + 1, strings)
        : field.mapKind === 'enum'
          ? enumValue(field.enum.values.map((v) => v.number))
          : scalar(field.scalar, strings);
    const key = field.mapKey === ScalarType.STRING ? strings : scalar(field.mapKey, strings).map(String);
    return fc.array(fc.tuple(key, value), { maxLength: 3 }).map((pairs) => Object.fromEntries(pairs));
  }
  if (field.fieldKind === 'message') return messageInit(field.message, depth + 1, strings);
  if (field.fieldKind === 'enum') return enumValue(field.enum.values.map((v) => v.number));
  return scalar(field.scalar, strings);
}

function enumValue(known: number[]): Arbitrary<number> {
  return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fc.integer() });
}

/** A random init object for `desc` (every field maybe set, one case of each oneof maybe set). */
function messageInit(desc: DescMessage, depth: number, strings: Arbitrary<string>): Arbitrary<Record<string, unknown>> {
  if (depth > MAX_DEPTH) return fc.constant({});
  const parts: Record<string, Arbitrary<unknown>> = {};
  for (const f of desc.fields) if (!f.oneof) parts[f.localName] = single(f, depth, strings);
  for (const o of desc.oneofs) {
    parts[o.localName] = fc.oneof(...o.fields.map((f) => single(f, depth, strings).map((value) => ({ case: f.localName, value }))));
  }
  return fc.record(parts, { requiredKeys: [] });
}

/** Any message of type `desc` with random field values, encoded. */
export function randomMessageBytes(desc: DescMessage, strings: Arbitrary<string>): Arbitrary<Uint8Array> {
  return messageInit(desc, 0, strings).map((init) => toBinary(desc, create(desc, init as never)));
}

/** One edit of a byte string. */
interface Mutation {
  readonly op: 'flip' | 'set' | 'insert' | 'delete' | 'cut' | 'repeat';
  readonly at: number;
  readonly value: number;
  readonly length: number;
}

const mutation: Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('flip', 'set', 'insert', 'delete', 'cut', 'repeat'),
  at: fc.nat(),
  value: fc.integer({ min: 0, max: 255 }),
  length: fc.integer({ min: 1, max: 16 }),
});

function applyMutation(bytes: Buffer, m: Mutation): Buffer {
  const at = bytes.length === 0 ? 0 : m.at % bytes.length;
  switch (m.op) {
    case 'flip': {
      const out = Buffer.from(bytes);
      if (out.length) out[at] = (out[at] as number) ^ (1 << (m.value % 8));
      return out;
    }
    case 'set': {
      const out = Buffer.from(bytes);
      if (out.length) out[at] = m.value;
      return out;
    }
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), Buffer.alloc(m.length, m.value), bytes.subarray(at)]);
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.length)]);
    case 'cut':
      return bytes.subarray(0, at);
    case 'repeat':
      return Buffer.concat([bytes, bytes.subarray(at, at + m.length)]);
  }
}

/** `seed` with one to four random edits. */
export function mutatedBytes(seed: Uint8Array): Arbitrary<Uint8Array> {
  return fc.array(mutation, { minLength: 1, maxLength: 4 }).map((ms) => ms.reduce(applyMutation, Buffer.from(seed)));
}

/** Request bytes for one method: pure noise, an edited valid request, a valid request with random fields merged over it, or a random message. */
export function requestBytes(
  desc: DescMessage,
  seed: Uint8Array,
  strings: Arbitrary<string>,
): Arbitrary<{ kind: string; bytes: Uint8Array }> {
  const random = randomMessageBytes(desc, strings);
  return fc.oneof(
    fc.uint8Array({ maxLength: 256 }).map((bytes) => ({ kind: 'noise', bytes })),
    mutatedBytes(seed).map((bytes) => ({ kind: 'mutated', bytes })),
    // Protobuf merges a message given twice: the random fields override the valid request's.
    random.map((r) => ({ kind: 'merged', bytes: Buffer.concat([Buffer.from(seed), Buffer.from(r)]) })),
    random.map((bytes) => ({ kind: 'fields', bytes })),
  );
}
