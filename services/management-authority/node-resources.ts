/**
 * What a node reports of its resources and images, as the registry checks and
 * keeps it, and the protobuf form of resources.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { ResourceSpec } from '../generated/fedlab/v1/common.js';
import type { Resources } from './records.js';

/** What a node offers before it says otherwise (ImageList unset: only `host`). */
export const DEFAULT_IMAGES: readonly string[] = Object.freeze(['host']);
/** Most image names one node may advertise, and the longest name. */
const MAX_IMAGES = 256;
const MAX_IMAGE_NAME = 80;

/** Protobuf form of resources (with the image a sliver asked for, if any). */
export function toSpec(r: Resources, bandwidthKbps = 0, image?: string): ResourceSpec {
  return { cpuMillis: r.cpuMillis, memMb: r.memMb, diskMb: r.diskMb, pids: r.pids, bandwidthKbps, ...(image ? { image } : {}) };
}

/** The images a node offers slivers. */
export function imagesOfNode(n: { readonly images?: readonly string[] | undefined }): readonly string[] {
  return n.images ?? DEFAULT_IMAGES;
}

/** The images of a heartbeat, checked and sorted; undefined when it names none (the node keeps what it had). */
export function imagesOf(list: { names: string[] } | undefined): string[] | undefined {
  if (!list) return undefined;
  if (list.names.length > MAX_IMAGES) throw new InvalidArgumentError(`images lists at most ${MAX_IMAGES} names`, { field: 'images' });
  for (const n of list.names) {
    if (typeof n !== 'string' || n === '' || n.length > MAX_IMAGE_NAME || !/^[\x21-\x7e]+$/.test(n)) {
      throw new InvalidArgumentError(`images: ${JSON.stringify(String(n).slice(0, 40))} is not an image name`, { field: 'images' });
    }
  }
  return [...new Set(list.names)].sort();
}

/** Whether two resource sets are the same. */
export function sameResources(a: Resources, b: Resources): boolean {
  return a.cpuMillis === b.cpuMillis && a.memMb === b.memMb && a.diskMb === b.diskMb && a.pids === b.pids;
}
