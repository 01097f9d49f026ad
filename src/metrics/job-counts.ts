import type { JobType } from '../../models/common.js'
import { jobTypes } from '../../models/documents.js'
import { ProcessingState } from '../../models/processing-state.js'
import type { CouchDatabase } from '../db/couch.js'
import { DESIGN } from '../db/design.js'

export const processingStates: readonly ProcessingState[] = ProcessingState.options

/** Jobs per type and processing state, every combination present (zero when none). */
export type JobCounts = Record<JobType, Record<ProcessingState, number>>

/** Jobs waiting or running: what a pool of workers still has to do (CloudWatch's QueueDepth). */
export function queueDepth (counts: JobCounts, types: readonly JobType[] = jobTypes): number {
  return types.reduce((sum, type) => sum + counts[type].pending + counts[type].processing, 0)
}

export function emptyCounts (): JobCounts {
  const counts = {} as JobCounts
  for (const type of jobTypes) {
    counts[type] = {} as Record<ProcessingState, number>
    for (const state of processingStates) counts[type][state] = 0
  }
  return counts
}

/**
 * Counts every job in the database by type and state from the `by-state` view's `_count`
 * reduce at group level 2: one small request however many jobs there are, and the truth for
 * the whole cluster rather than what this process happened to see. Throws the database's
 * error (UnavailableError when it is unreachable).
 */
export async function countJobs (couch: CouchDatabase): Promise<JobCounts> {
  const res = await couch.view(DESIGN, 'by-state', { reduce: true, group_level: 2 })
  const counts = emptyCounts()
  for (const row of res.rows) {
    if (!Array.isArray(row.key)) continue
    const [type, state] = row.key as unknown[]
    // Documents of other types or unknown states (a newer version's) are not ours to count.
    if (typeof type !== 'string' || typeof state !== 'string') continue
    const byState = (counts as Partial<Record<string, Record<string, number>>>)[type]
    if (byState === undefined || !(state in byState)) continue
    byState[state] = typeof row.value === 'number' ? row.value : 0
  }
  return counts
}

/**
 * countJobs behind a short cache: scrapes from several Prometheus servers, or a scrape and a
 * status refresh, within `ttlMs` share one view query, and concurrent callers share the
 * request in flight. A failed query is not cached.
 */
export class CachedJobCounts {
  readonly #couch: CouchDatabase
  readonly #ttlMs: number
  #value: { at: number, counts: JobCounts } | undefined
  #pending: Promise<JobCounts> | undefined

  constructor (couch: CouchDatabase, ttlMs = 1500) {
    this.#couch = couch
    this.#ttlMs = ttlMs
  }

  async get (): Promise<JobCounts> {
    const cached = this.#value
    if (cached !== undefined && Date.now() - cached.at < this.#ttlMs) return cached.counts
    this.#pending ??= countJobs(this.#couch).then((counts) => {
      this.#value = { at: Date.now(), counts }
      return counts
    }).finally(() => { this.#pending = undefined })
    return await this.#pending
  }
}
