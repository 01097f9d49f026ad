import { z } from 'zod'

/** One row of CouchDB's `_changes`: a document's latest change, with the document when asked. */
export const Change = z.object({
  seq: z.unknown(),
  id: z.string(),
  deleted: z.boolean().optional(),
  changes: z.array(z.object({ rev: z.string() })).optional(),
  doc: z.unknown().optional()
})
export type Change = z.infer<typeof Change>

/** A normal (not continuous) `_changes` answer. */
export const ChangesPage = z.object({
  results: z.array(Change),
  last_seq: z.unknown()
})

/** A sequence as text: CouchDB's are strings already, PouchDB's are numbers. */
export function seqText (seq: unknown): string {
  return typeof seq === 'string' ? seq : JSON.stringify(seq)
}

/** The generation of a CouchDB revision (`3-abc…` → 3); -1 when there is none to read. */
export function revGeneration (rev: unknown): number {
  const generation = typeof rev === 'string' ? Number.parseInt(rev, 10) : Number.NaN
  return Number.isFinite(generation) ? generation : -1
}
