/**
 * An in-memory read cache of documents, kept correct by the database's changes feed.
 *
 * It only answers while the feed is live: losing the feed empties it. Every change the feed
 * reports records that document's newest revision, evicting a cached copy of any other
 * revision. A copy read from the database is only cached if it is at least as new as the
 * newest revision the feed has reported, so a read that raced a write can never put the older
 * copy back. (The revision map is bounded; an id would have to drop out of it during a single
 * read for that guard to lapse.)
 */
export class DocumentCache {
  private readonly entries = new Map<string, unknown>()
  private readonly newestRevs = new Map<string, string>()
  private epoch = 0
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
    return this.epoch
  }

  /**
   * Caches a copy just read or written, unless the feed was lost meanwhile or a newer revision
   * is known (from the feed, from our own write, or already cached): a slow read that started
   * before a write must not put the older copy back over the newer one.
   */
  fill (id: string, doc: unknown, token: number): void {
    if (!this.live || token !== this.epoch) return
    const rev = revOf(doc)
    const newest = this.newestRevs.get(id)
    const cached = revOf(this.entries.get(id))
    if (rev === undefined || (newest !== undefined && !atLeast(rev, newest)) || (cached !== undefined && !atLeast(rev, cached))) return
    this.noteRev(id, rev)
    this.entries.delete(id)
    this.entries.set(id, doc)
    trim(this.entries, this.maxEntries)
  }

  /** The feed reported a change: `rev` is the document's newest revision (or unknown). */
  invalidate (id: string, rev?: string): void {
    const cached = this.entries.get(id)
    if (rev === undefined || revOf(cached) !== rev) this.entries.delete(id)
    if (rev !== undefined) this.noteRev(id, rev)
  }

  // Only ever moves forward: our own write can be ahead of the feed reporting an older change.
  private noteRev (id: string, rev: string): void {
    const known = this.newestRevs.get(id)
    if (known !== undefined && atLeast(known, rev)) return
    this.newestRevs.delete(id)
    this.newestRevs.set(id, rev)
    trim(this.newestRevs, this.maxEntries * 5)
  }

  /** The feed connected (true) or was lost (false): either way, start from nothing. */
  setLive (live: boolean): void {
    this.epoch++
    this.entries.clear()
    this.newestRevs.clear()
    this.live = live
  }

  get size (): number {
    return this.entries.size
  }
}

function revOf (doc: unknown): string | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined
  const rev: unknown = Reflect.get(doc, '_rev')
  return typeof rev === 'string' ? rev : undefined
}

/** CouchDB revisions are `<generation>-<hash>`; a higher generation is newer. */
function atLeast (rev: string, newest: string): boolean {
  const generation = (r: string): number => Number.parseInt(r, 10)
  const a = generation(rev)
  const b = generation(newest)
  return a > b || (a === b && rev === newest)
}

function trim (map: Map<string, unknown>, max: number): void {
  while (map.size > max) {
    const oldest = map.keys().next()
    if (oldest.done === true) return
    map.delete(oldest.value)
  }
}
