import type { CouchDatabase } from './couch.js'
import type { DocumentCache } from './document-cache.js'

type Writable = { _id: string, _rev?: string | undefined } & Record<string, unknown>

/**
 * Raw document access with the read cache in front: every read and write of the application
 * goes through here, so the cache sees every write this process makes.
 */
export class Documents {
  readonly couch: CouchDatabase
  readonly cache: DocumentCache | undefined

  constructor (couch: CouchDatabase, cache?: DocumentCache) {
    this.couch = couch
    this.cache = cache
  }

  async read (id: string): Promise<unknown> {
    const cached = this.cache?.get(id)
    if (cached !== undefined) return cached
    const token = this.cache?.begin() ?? 0
    const doc = await this.couch.get(id)
    this.cache?.fill(id, doc, token)
    return doc
  }

  /** Writes and returns the new `_rev`. A stale `_rev` rejects with ConflictError. */
  async write (doc: Writable): Promise<string> {
    const token = this.cache?.begin() ?? 0
    try {
      const rev = await this.couch.put(doc)
      this.cache?.fill(doc._id, { ...doc, _rev: rev }, token)
      return rev
    } catch (err) {
      // The write may or may not have happened (a timeout); forget whatever is cached.
      this.cache?.invalidate(doc._id)
      throw err
    }
  }

  async remove (id: string, rev: string): Promise<void> {
    this.cache?.invalidate(id)
    await this.couch.remove(id, rev)
  }
}
