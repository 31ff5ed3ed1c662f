/**
 * A request the transport could not hand to a handler (too large, or not the
 * method's message), kept in the request's place so that the adapter answers
 * it with the error's status instead of grpc-js answering INTERNAL.
 */

/** A request the transport could not hand to the handler, and why (decoded lazily into an error). */
export class RefusedRequest {
  constructor(readonly error: Error) {}
}

/** Throws the refusal the bounded deserializer left in place of a request that could not be decoded. */
export function admit(request: unknown): void {
  if (request instanceof RefusedRequest) throw request.error;
}
