/**
 * A small bounded memo for pure functions of a string (header segments, URNs,
 * target patterns, key thumbprints). The same few principals sign most
 * credentials a service sees, so their parts repeat; remembering them keeps
 * the verifier's work close to the signature checks themselves. When full, it
 * simply starts over: correctness never depends on a hit.
 */
export class Memo<V> {
  private readonly map = new Map<string, V>();

  /**
   * @param max most entries kept
   * @param maxKeyLength longer keys are computed but never kept, so hostile input cannot fill memory
   */
  constructor(
    private readonly max = 4096,
    private readonly maxKeyLength = 512,
  ) {}

  get(key: string, compute: (key: string) => V): V {
    if (key.length > this.maxKeyLength) return compute(key);
    const hit = this.map.get(key);
    if (hit !== undefined) return hit;
    const v = compute(key);
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, v);
    return v;
  }
}
