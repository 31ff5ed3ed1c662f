/**
 * The typed error for a gRPC code, for calls that fail as a whole with the
 * code of a sliver's failure (moved here unchanged from aggregate.ts; the
 * one core module for failed calls will replace it).
 */
import { status as Status } from '@grpc/grpc-js';
import {
  AbortedError,
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  FedlabError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnavailableError,
} from '../../core/errors.js';

/** The typed error for a gRPC code (the whole call fails with the first failure's code). */
export function errorFor(code: number, message: string): FedlabError {
  switch (code) {
    case Status.INVALID_ARGUMENT:
      return new InvalidArgumentError(message);
    case Status.NOT_FOUND:
      return new NotFoundError(message);
    case Status.ALREADY_EXISTS:
      return new AlreadyExistsError(message);
    case Status.PERMISSION_DENIED:
      return new PermissionDeniedError(message);
    case Status.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(message);
    case Status.FAILED_PRECONDITION:
      return new FailedPreconditionError(message);
    case Status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(message);
    case Status.ABORTED:
      return new AbortedError(message);
    default:
      return new UnavailableError(message);
  }
}
