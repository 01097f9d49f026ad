/**
 * An in-memory read cache of documents, kept correct by the database's changes feed.
 *
 * It only answers while the feed is live: every change the feed reports evicts that id, and
 * losing the feed empties the cache. A read that raced a change must not repopulate it with the
 * older copy, so fills carry the generation seen before the read and are dropped if any
 * invalidation happened since.
 */
export class DocumentCache {
  private readonly entries = new Map<string, unknown>()
  private generation = 0
  private live = false
  private readonly maxEntries: number

  constructor (maxEntries = 10_000) {
    this.maxEntries = maxEntries
  }

  get isLive (): boolean {
    return this.live
  }

  get (id: string): unknown {
    if (!this.live) return undefined
    const doc = this.entries.get(id)
    if (doc !== undefined) {
      // Map keeps insertion order: re-inserting makes this the most recently used entry.
      this.entries.delete(id)
      this.entries.set(id, doc)
    }
    return doc
  }

  /** Token to pass to `fill` after reading from the database. */
  begin (): number {
    return this.generation
  }

  fill (id: string, doc: unknown, token: number): void {
    if (!this.live || token !== this.generation) return
    this.entries.set(id, doc)
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
    }
  }

  invalidate (id: string): void {
    this.generation++
    this.entries.delete(id)
  }

  /** The feed connected (true) or was lost (false). */
  setLive (live: boolean): void {
    this.generation++
    this.entries.clear()
    this.live = live
  }

  get size (): number {
    return this.entries.size
  }
}
