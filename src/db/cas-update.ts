import { ConflictError } from '../lib/errors.js'

export interface CasOptions {
  /** How many 409s to absorb before giving up with ConflictError. */
  maxAttempts?: number
}

/**
 * Read–modify–write with CouchDB's optimistic concurrency: re-reads and re-applies `change` on
 * every 409, so a concurrent writer never has its fields silently dropped (the original kept a
 * stale `_rev` and lost updates). `change` returns null when the document is already as wanted:
 * that is a no-op, not an error. Resolves to the written document (with its new `_rev`), or
 * `{ written: false }` with the current document for a no-op.
 */
export async function casUpdate<T extends { _id: string, _rev?: string | undefined }> (
  read: () => Promise<T>,
  write: (doc: T) => Promise<string>,
  change: (current: T) => T | null,
  options: CasOptions = {}
): Promise<{ written: boolean, doc: T }> {
  const maxAttempts = options.maxAttempts ?? 10
  for (let attempt = 1; ; attempt++) {
    const current = await read()
    const next = change(current)
    if (next === null) return { written: false, doc: current }
    try {
      const rev = await write({ ...next, _id: current._id, _rev: current._rev })
      return { written: true, doc: { ...next, _id: current._id, _rev: rev } }
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= maxAttempts) throw err
      // Jittered pause so two writers retrying in lockstep do not collide again.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt))
    }
  }
}
