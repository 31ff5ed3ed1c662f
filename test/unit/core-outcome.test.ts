// The one interpreter of failed calls: codes by name, unreachable vs refused, the inverse of the kind → code map.
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { FedlabError, NotFoundError, type ErrorKind } from '../../services/core/errors.js';
import {
  certainlyChangedNothing,
  errorForCode,
  errorFromCall,
  isUnreachable,
  OK,
  outcomeOf,
  plainOutcome,
} from '../../services/core/rpc/outcome.js';
import { codeForKind } from '../../services/core/rpc/status.js';

function serviceError(code: Status, details: string, rule?: string): ServiceError {
  const metadata = new Metadata();
  if (rule) metadata.set('fedlab-rule', rule);
  return Object.assign(new Error(`${code} ${Status[code]}: ${details}`), { code, details, metadata });
}

const site = { name: 'site emu.test', advice: 'try again later or leave it out', deadlineMs: 800 };

describe('outcome', () => {
  it('tells a transport failure (unreachable) from an UNAVAILABLE the callee sent', () => {
    expect(isUnreachable(serviceError(Status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1'))).toBe(
      true,
    );
    expect(isUnreachable(serviceError(Status.UNAVAILABLE, 'the store is failed: disk full'))).toBe(false);
    expect(isUnreachable(serviceError(Status.NOT_FOUND, 'ECONNREFUSED'))).toBe(false);
    expect(isUnreachable(new Error('ECONNREFUSED'))).toBe(false);
  });

  it('knows which failures certainly changed nothing at the callee', () => {
    for (const code of [
      Status.INVALID_ARGUMENT,
      Status.NOT_FOUND,
      Status.PERMISSION_DENIED,
      Status.RESOURCE_EXHAUSTED,
      Status.FAILED_PRECONDITION,
      Status.UNAUTHENTICATED,
      Status.ALREADY_EXISTS,
    ]) {
      expect(certainlyChangedNothing(serviceError(code, 'no'))).toBe(true);
    }
    expect(certainlyChangedNothing(serviceError(Status.UNAVAILABLE, 'connect ECONNREFUSED 127.0.0.1:9'))).toBe(true);
    // A broken connection, a deadline or an internal error may have left work done.
    expect(certainlyChangedNothing(serviceError(Status.UNAVAILABLE, 'Connection dropped'))).toBe(false);
    expect(certainlyChangedNothing(serviceError(Status.DEADLINE_EXCEEDED, 'Deadline exceeded'))).toBe(false);
    expect(certainlyChangedNothing(serviceError(Status.INTERNAL, 'boom'))).toBe(false);
    expect(certainlyChangedNothing(new Error('not a call'))).toBe(false);
  });

  it('names the callee and says what to do', () => {
    expect(outcomeOf(serviceError(Status.UNAVAILABLE, 'connect ECONNREFUSED 127.0.0.1:1'), site)).toEqual({
      code: Status.UNAVAILABLE,
      reason: 'site emu.test: unreachable (connect ECONNREFUSED 127.0.0.1:1); try again later or leave it out',
    });
    expect(outcomeOf(serviceError(Status.DEADLINE_EXCEEDED, 'Deadline exceeded'), site).reason).toBe(
      'site emu.test: did not answer within 800 ms (Deadline exceeded); try again later or leave it out',
    );
    expect(outcomeOf(serviceError(Status.RESOURCE_EXHAUSTED, 'only 0 such node(s) are UP and free'), site)).toEqual({
      code: Status.RESOURCE_EXHAUSTED,
      reason: 'site emu.test: only 0 such node(s) are UP and free',
    });
    expect(outcomeOf(new NotFoundError('no slice x'), site)).toEqual({ code: Status.NOT_FOUND, reason: 'site emu.test: no slice x' });
    expect(outcomeOf(new Error('bug'), site).code).toBe(Status.INTERNAL);
    expect(plainOutcome(serviceError(Status.ABORTED, 'superseded'))).toEqual({ code: Status.ABORTED, reason: 'superseded' });
    expect(OK.code).toBe(Status.OK);
  });

  it('errorForCode is the inverse of codeForKind for every kind', () => {
    const kinds: ErrorKind[] = [
      'invalid_argument',
      'unauthenticated',
      'permission_denied',
      'not_found',
      'already_exists',
      'failed_precondition',
      'resource_exhausted',
      'deadline_exceeded',
      'unavailable',
      'aborted',
    ];
    for (const kind of kinds) expect(errorForCode(codeForKind(kind), 'm').kind).toBe(kind);
    // Codes without a kind of their own are a passing failure of the other side.
    expect(errorForCode(Status.INTERNAL, 'm').kind).toBe('unavailable');
    expect(errorForCode(Status.CANCELLED, 'm').kind).toBe('unavailable');
  });

  it('errorFromCall keeps the callee, the code and the rule', () => {
    const err = errorFromCall(serviceError(Status.PERMISSION_DENIED, 'link 1 fails', 'grant-privilege'), { name: 'node n1', advice: '' });
    expect(err).toBeInstanceOf(FedlabError);
    expect(err.kind).toBe('permission_denied');
    expect(err.message).toBe('node n1: link 1 fails');
    expect(err.details).toEqual({ rule: 'grant-privilege' });
    const own = new NotFoundError('x');
    expect(errorFromCall(own, site)).toBe(own);
  });
});
