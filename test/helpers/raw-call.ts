// Calls any method of the API by its path with bytes we choose, as a given TLS identity with a given
// credential chain, and reports only how the call ended (its status code and message): what the
// authorisation matrix and the wire fuzzer need, for every method alike, without generated clients.
import { Client, credentials as grpcCredentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { fromJson, toBinary, type JsonObject } from '@bufbuild/protobuf';
import { CREDENTIAL_METADATA_KEY } from '../../services/core/rpc/context.js';
import type { ApiMethod } from './descriptor-set.js';

/** A caller: its TLS client certificate and key (none: server authentication only) and its chain. */
export interface WireCaller {
  /** A name for messages (e.g. the caller class). */
  readonly label: string;
  readonly cert?: string;
  readonly key?: string;
  /** The credential chain sent in metadata, root first (empty: none). */
  readonly chain: readonly string[];
}

/** How a call ended. */
export interface CallEnd {
  readonly code: Status;
  readonly details: string;
  /** Messages a server stream sent before it ended. */
  readonly messages: number;
}

const identity = (b: Buffer): Buffer => b;

/** The status name of a code (`OK`, `NOT_FOUND`, ...). */
export function codeName(code: Status): string {
  return Status[code] ?? String(code);
}

/** Encodes a request given in protobuf JSON form (camelCase names, RFC 3339 times) as the method's message. */
export function encodeRequest(method: ApiMethod, json: JsonObject): Buffer {
  return Buffer.from(toBinary(method.input, fromJson(method.input, json)));
}

/** Raw clients of the servers of one test, one channel per address and identity. */
export class WireCalls {
  private readonly clients = new Map<string, Client>();

  /** @param caPem every CA the servers' certificates may chain to. */
  constructor(private readonly caPem: string) {}

  private client(address: string, who: WireCaller): Client {
    const key = `${address} ${who.cert ?? ''}`;
    let c = this.clients.get(key);
    if (!c) {
      // The CA check stays; host names are not checked (test servers' certificates name URNs, not hosts).
      const creds =
        who.cert && who.key
          ? grpcCredentials.createSsl(Buffer.from(this.caPem), Buffer.from(who.key), Buffer.from(who.cert), {
              checkServerIdentity: () => undefined,
            })
          : grpcCredentials.createSsl(Buffer.from(this.caPem), null, null, { checkServerIdentity: () => undefined });
      c = new Client(address, creds, { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
      this.clients.set(key, c);
    }
    return c;
  }

  /** Calls `method` at `address` with `request` (bytes, or protobuf JSON) and resolves with how it ended; never rejects. */
  call(address: string, method: ApiMethod, request: Buffer | JsonObject, who: WireCaller, deadlineMs = 20_000): Promise<CallEnd> {
    const bytes = Buffer.isBuffer(request) ? request : encodeRequest(method, request);
    const md = new Metadata();
    for (const link of who.chain) md.add(CREDENTIAL_METADATA_KEY, link);
    const client = this.client(address, who);
    const deadline = Date.now() + deadlineMs;
    return new Promise<CallEnd>((resolve) => {
      let messages = 0;
      let done = false;
      const end = (code: Status, details: string): void => {
        if (done) return;
        done = true;
        resolve({ code, details, messages });
      };
      if (method.bidiStreaming) {
        const stream = client.makeBidiStreamRequest(method.path, identity, identity, md, { deadline });
        stream.on('data', () => messages++);
        stream.on('error', (err: ServiceError) => end(err.code, err.details));
        stream.on('status', (s: { code: Status; details: string }) => end(s.code, s.details));
        stream.write(bytes);
        stream.end();
        return;
      }
      if (!method.serverStreaming) {
        client.makeUnaryRequest(method.path, identity, identity, bytes, md, { deadline }, (err: ServiceError | null) => {
          if (err) end(err.code, err.details);
          else end(Status.OK, '');
        });
        return;
      }
      const stream = client.makeServerStreamRequest(method.path, identity, identity, bytes, md, { deadline });
      stream.on('data', () => messages++);
      stream.on('error', (err: ServiceError) => end(err.code, err.details));
      stream.on('status', (s: { code: Status; details: string }) => end(s.code, s.details));
    });
  }

  /** Closes every channel. */
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
