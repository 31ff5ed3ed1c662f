// Exercises the generated fedlab.v1 code: binary round trips of messages with nested messages,
// Timestamps (as Date), maps, optional bytes, oneofs and 64-bit numbers, plus the service exports.
import { describe, expect, it } from 'vitest';
import { AllocationState, ResourceLimits, SliverIsolation } from '../../services/generated/fedlab/v1/common.js';
import {
  CreateSliverRequest,
  ExecRequest,
  ExecResponse,
  NodeManagerClient,
  NodeManagerService,
} from '../../services/generated/fedlab/v1/node_manager.js';
import { FederationClient, FederationService, GetBundleResponse } from '../../services/generated/fedlab/v1/federation.js';
import { CreateSliceRequest, SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import { AggregateService } from '../../services/generated/fedlab/v1/aggregate.js';
import { ManagementAuthorityService } from '../../services/generated/fedlab/v1/management_authority.js';
import { ServiceProviderService } from '../../services/generated/fedlab/v1/service_provider.js';

describe('generated fedlab.v1 code', () => {
  it('round-trips a CreateSliverRequest with nested resources, interfaces and a Timestamp', () => {
    const expiresAt = new Date('2026-01-02T03:04:05.678Z');
    const request = CreateSliverRequest.fromPartial({
      requestId: 'req-1',
      sliverUrn: 'urn:fedlab:plc.test:sliver:s1',
      sliceUrn: 'urn:fedlab:sa.test:slice:demo',
      sliceAuthorityUrn: 'urn:fedlab:sa.test:authority:sa',
      sliceAuthorityJwk: '{"kty":"EC","crv":"P-256","x":"x","y":"y"}',
      providerUrn: 'urn:fedlab:sp.test:sp:acme',
      resources: { cpuMillis: 500, memMb: 256, diskMb: 1024, pids: 64, bandwidthKbps: 10_000 },
      expiresAt,
      interfaces: [{ link: 'lan0', name: 'eth1', address: '10.1.1.2/24', bandwidthKbps: 1000, delayMs: 5, lossPercent: 0.5 }],
      allocationState: AllocationState.ALLOCATION_STATE_ALLOCATED,
    });
    const bytes = CreateSliverRequest.encode(request).finish();
    const back = CreateSliverRequest.decode(bytes);
    expect(back).toEqual(request);
    expect(back.expiresAt).toBeInstanceOf(Date);
    expect(back.expiresAt?.toISOString()).toBe('2026-01-02T03:04:05.678Z');
    expect(back.resources?.memMb).toBe(256);
    // JSON form uses the proto field names in lowerCamelCase and RFC 3339 timestamps.
    const json = CreateSliverRequest.toJSON(back) as Record<string, unknown>;
    expect(json.expiresAt).toBe('2026-01-02T03:04:05.678Z');
    expect(CreateSliverRequest.fromJSON(json)).toEqual(back);
  });

  it('keeps absent and zero credential limits apart', () => {
    const limits = ResourceLimits.fromPartial({ slivers: 0, memMb: 8192 });
    const back = ResourceLimits.decode(ResourceLimits.encode(limits).finish());
    expect(back.slivers).toBe(0);
    expect(back.memMb).toBe(8192);
    expect(back.cpuMillis).toBeUndefined();
    expect(back.ttlS).toBeUndefined();
  });

  it('round-trips Exec requests and output chunks (maps, optional bytes, oneofs)', () => {
    const request = ExecRequest.fromPartial({
      sliverUrn: 'urn:fedlab:plc.test:sliver:s1',
      argv: ['sh', '-c', 'cat'],
      env: { A: '1' },
      stdin: Buffer.from('hello'),
      timeoutMs: 2000,
    });
    const back = ExecRequest.decode(ExecRequest.encode(request).finish());
    expect(back.env).toEqual({ A: '1' });
    expect(Buffer.from(back.stdin!).toString()).toBe('hello');
    expect(ExecRequest.decode(ExecRequest.encode({ ...request, stdin: undefined }).finish()).stdin).toBeUndefined();

    const out = ExecResponse.decode(ExecResponse.encode({ chunk: { $case: 'stdout', stdout: Buffer.from('hi') } }).finish());
    expect(out.chunk?.$case).toBe('stdout');
    const exit = ExecResponse.decode(
      ExecResponse.encode({
        chunk: { $case: 'exit', exit: { status: { $case: 'code', code: 0 }, timedOut: false, durationMs: 12 } },
      }).finish(),
    );
    expect(exit.chunk).toEqual({ $case: 'exit', exit: { status: { $case: 'code', code: 0 }, timedOut: false, durationMs: 12 } });
  });

  it('round-trips a CreateSliceRequest spanning files (SiteRequest from common.proto)', () => {
    const request = CreateSliceRequest.fromPartial({
      requestId: 'r',
      name: 'demo',
      sites: [
        {
          site: 'emu.test',
          request: { nodes: { count: 2, clientIds: ['a', 'b'] }, links: [{ name: 'l', endpoints: ['a', 'b'], bandwidthKbps: 1000 }] },
        },
      ],
    });
    expect(CreateSliceRequest.decode(CreateSliceRequest.encode(request).finish())).toEqual(request);
  });

  it('encodes uint64 as numbers and exports grpc-js services and clients', () => {
    const bundle = { domain: 'plc.test', serial: 2 ** 40, fingerprint: 'sha256:00', bundleJson: '{}' };
    expect(GetBundleResponse.decode(GetBundleResponse.encode(bundle).finish())).toEqual(bundle);
    expect(FederationService.getBundle.path).toBe('/fedlab.v1.Federation/GetBundle');
    expect(NodeManagerService.exec.responseStream).toBe(true);
    expect(SliceAuthorityService.watchSlice.responseStream).toBe(true);
    expect(ServiceProviderService.deploy.responseStream).toBe(true);
    expect(AggregateService.performOperationalAction.path).toBe('/fedlab.v1.Aggregate/PerformOperationalAction');
    expect(ManagementAuthorityService.delegateToSliceAuthority.path).toBe('/fedlab.v1.ManagementAuthority/DelegateToSliceAuthority');
    expect(typeof FederationClient).toBe('function');
    expect(typeof NodeManagerClient).toBe('function');
    expect(SliverIsolation.SLIVER_ISOLATION_NONE).toBe(4);
  });
});
