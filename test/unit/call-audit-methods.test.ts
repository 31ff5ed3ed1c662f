// Which methods the audit log records: state changes, not reads, and not a node's heartbeats — unary or
// on a stream, whose opens a node (or any certificate holder, refused) could repeat to flood the log.
import { describe, expect, it } from 'vitest';
import { isAudited } from '../../services/core/audit/call-audit.js';

describe('audited methods', () => {
  it('records state changes and leaves out reads and heartbeats', () => {
    expect(isAudited('/fedlab.v1.SliceAuthority/CreateSlice')).toBe(true);
    expect(isAudited('/fedlab.v1.SliceAuthority/DeleteSlice')).toBe(true);
    expect(isAudited('/fedlab.v1.SliceAuthority/GetSlice')).toBe(false);
    expect(isAudited('/fedlab.v1.SliceAuthority/ListSlices')).toBe(false);
    expect(isAudited('/fedlab.v1.ManagementAuthority/Heartbeat')).toBe(false);
    expect(isAudited('/fedlab.v1.ManagementAuthority/HeartbeatStream')).toBe(false);
  });
});
