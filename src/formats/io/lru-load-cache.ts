/**
 * A least-recently-used cache of loads in flight or done, capped by the bytes its values hold. It stores
 * promises, so concurrent readers asking for the same table (a qcow2 L2 table, a VMDK grain table) or
 * compressed cluster share one read; a load that fails is forgotten so that the next caller sees the error
 * afresh instead of a cached rejection.
 */
export class LruLoadCache<K, V> {
  private readonly entries = new Map<K, { readonly value: Promise<V>; readonly bytes: number }>();
  private heldBytes = 0;

  constructor(private readonly capBytes: number) {}

  get bytes(): number {
    return this.heldBytes;
  }

  /** The cached value for `key`, or the result of `load()` (which is cached as `bytes` bytes). */
  get(key: K, bytes: number, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit) {
      // Map iteration order is insertion order: re-inserting marks the entry most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.value;
    }
    const value = load();
    const entry = { value, bytes };
    this.entries.set(key, entry);
    this.heldBytes += bytes;
    value.catch(() => {
      if (this.entries.get(key) === entry) this.forget(key);
    });
    this.evict();
    return value;
  }

  clear(): void {
    this.entries.clear();
    this.heldBytes = 0;
  }

  private forget(key: K): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.heldBytes -= entry.bytes;
  }

  private evict(): void {
    // Always keep the newest entry, even when it alone exceeds the cap: its caller is waiting for it.
    for (const key of this.entries.keys()) {
      if (this.heldBytes <= this.capBytes || this.entries.size <= 1) break;
      this.forget(key);
    }
  }
}
