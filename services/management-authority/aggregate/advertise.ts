/**
 * What the site advertises: GetVersion (the site's style, formats, actions,
 * limits and terms) and ListResources (its UP nodes, paged, optionally with
 * an advertisement document). Whether the kernel has netem is learnt once.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { pageSize } from '../../core/validate.js';
import { NodeHealth, SiteStyle } from '../../generated/fedlab/v1/common.js';
import {
  OperationalAction,
  type AdvertisedNode,
  type AggregateGetVersionResponse,
  type AggregateListResourcesRequest,
  type AggregateListResourcesResponse,
} from '../../generated/fedlab/v1/aggregate.js';
import type { StyleName } from '../config.js';
import type { LiveNode } from '../node-registry.js';
import { imagesOfNode, toSpec } from '../node-resources.js';
import { sshEndpointToWire } from '../node-ssh.js';
import { decodePageToken, encodePageToken, firstAfter } from '../../core/paging.js';
import { freeOf } from '../records.js';
import { RSPEC_FORMAT } from '../requests.js';
import { isAllocatable, type AdmissionInputs } from './admission.js';
import type { AggregateState } from './aggregate-state.js';

const STYLE: Record<StyleName, SiteStyle> = {
  planetlab: SiteStyle.SITE_STYLE_PLANETLAB,
  emulab: SiteStyle.SITE_STYLE_EMULAB,
  protogeni: SiteStyle.SITE_STYLE_PROTOGENI,
};

/** GetVersion and ListResources. */
export class Advertiser {
  constructor(private readonly state: AggregateState) {}

  /** Kept for the start-up sequence: what it learnt (netem) is now read from the nodes at each call. */
  probe(): Promise<void> {
    return Promise.resolve();
  }

  /** Whether links can have delay and loss: some node of the site reports netem (its node manager probed it). */
  private get netem(): boolean {
    return this.state.rules.links && this.state.deps.registry.all().some((n) => n.record.netemAvailable);
  }

  /** GetVersion. */
  async getVersion(): Promise<AggregateGetVersionResponse> {
    const { deps, rules } = this.state;
    const s = deps.settings;
    return {
      apiVersion: 3,
      aggregateUrn: deps.maUrn,
      domain: this.state.domain,
      style: STYLE[s.style],
      softwareVersion: s.softwareVersion,
      requestDocumentFormats: rules.documents ? [RSPEC_FORMAT] : [],
      advertisementDocumentFormats: [RSPEC_FORMAT],
      operationalActions: [
        OperationalAction.OPERATIONAL_ACTION_START,
        OperationalAction.OPERATIONAL_ACTION_STOP,
        OperationalAction.OPERATIONAL_ACTION_RESTART,
        OperationalAction.OPERATIONAL_ACTION_UPDATE_USERS,
        ...(rules.swap ? [OperationalAction.OPERATIONAL_ACTION_SWAP_OUT, OperationalAction.OPERATIONAL_ACTION_SWAP_IN] : []),
      ],
      allocationHoldS: s.holdS,
      defaultSliverLifetimeS: s.defaultLifetimeS,
      maxSliverLifetimeS: s.maxLifetimeS,
      netemAvailable: this.netem,
      termsOfUse: s.terms,
      termsDigest: deps.providers.termsDigest,
      credentialTypes: ['fedlab-cred+jwt;v=1'],
    };
  }

  /**
   * ListResources: the UP nodes (only those allocatable now with
   * `available_only`), paged, optionally with an advertisement document.
   */
  listResources(req: AggregateListResourcesRequest): AggregateListResourcesResponse {
    const { deps } = this.state;
    const size = pageSize(req.pageSize);
    if (req.documentFormat !== '' && req.documentFormat !== RSPEC_FORMAT) {
      throw new InvalidArgumentError(
        `document_format ${JSON.stringify(req.documentFormat.slice(0, 40))} is not offered; use ${RSPEC_FORMAT} or none`,
        { field: 'document_format' },
      );
    }
    const after = decodePageToken('resources', req.pageToken);
    const urns = deps.registry.urns;
    const input = this.state.admissionInputs(this.state.now);
    const nodes: AdvertisedNode[] = [];
    let i = firstAfter(urns, after);
    let last = '';
    const wanted = (n: LiveNode): boolean => n.up && (!req.availableOnly || isAllocatable(input, n));
    for (; i < urns.length && nodes.length < size; i++) {
      const n = deps.registry.get(urns[i] as string) as LiveNode;
      if (!wanted(n)) continue;
      nodes.push(this.advertise(input, n));
      last = n.record.urn;
    }
    let more = false;
    for (; i < urns.length && !more; i++) more = wanted(deps.registry.get(urns[i] as string) as LiveNode);
    const doc =
      req.documentFormat === RSPEC_FORMAT
        ? JSON.stringify({
            type: 'advertisement',
            aggregate: deps.maUrn,
            style: deps.settings.style,
            nodes: nodes.map((n) => ({
              component_id: n.urn,
              health: n.health === NodeHealth.NODE_HEALTH_UP ? 'up' : 'down',
              exclusive: n.exclusive,
              allocatable: n.allocatable,
              capacity: specJson(n.capacity),
              available: specJson(n.available),
              images: n.images?.names ?? [],
              ...(n.ssh
                ? { ssh: { address: n.ssh.address, host_key: n.ssh.hostKey, host_key_fingerprint: n.ssh.hostKeyFingerprint } }
                : {}),
            })),
            ...(this.state.rules.links
              ? {
                  links: {
                    between: 'any two or more nodes of this site',
                    max_bandwidth_kbps: deps.settings.maxLinkKbps,
                    delay_and_loss: this.netem,
                  },
                }
              : {}),
          })
        : '';
    return { nodes, advertisementDocument: doc, nextPageToken: more ? encodePageToken('resources', last) : '' };
  }

  private advertise(input: AdmissionInputs, node: LiveNode): AdvertisedNode {
    const use = this.state.ledger.use(node.record.urn);
    return {
      urn: node.record.urn,
      health: node.up ? NodeHealth.NODE_HEALTH_UP : NodeHealth.NODE_HEALTH_DOWN,
      capacity: toSpec(node.capacity),
      available: toSpec(freeOf(node.capacity, use.committed)),
      exclusive: node.record.exclusive,
      allocatable: isAllocatable(input, node),
      isolation: node.record.isolation,
      netemAvailable: this.netem,
      images: { names: [...imagesOfNode(node)] },
      ssh: sshEndpointToWire(node.ssh),
    };
  }
}

function specJson(r: { cpuMillis: number; memMb: number; diskMb: number; pids: number } | undefined): Record<string, number> {
  return { cpu_millis: r?.cpuMillis ?? 0, mem_mb: r?.memMb ?? 0, disk_mb: r?.diskMb ?? 0, pids: r?.pids ?? 0 };
}
