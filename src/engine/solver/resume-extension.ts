import { z } from 'zod'
import { WireReader, WireType, WireWriter } from '../proto/wire.js'

/**
 * Field number of our resume record inside a .solverstate. caffe.SolverState uses 1–4; protobuf
 * parsers (real Caffe's included) keep and ignore unknown fields, so the file stays a valid
 * SolverState for Caffe while our engine can continue a run exactly where it stopped.
 */
export const RESUME_FIELD = 1000

const ResumeRecord = z.object({
  version: z.literal(1),
  /** Rng state after the snapshot iteration (its Box-Muller spare is null when empty). */
  rng: z.array(z.number().nullable()).length(5),
  /** Resumable layer states of the train net, by layer index. */
  train: z.record(z.string(), z.unknown()),
  /** Same for every test net, in test-net order. */
  test: z.array(z.record(z.string(), z.unknown())),
  /** The average_loss window, so the smoothed loss continues unchanged. */
  losses: z.array(z.number()),
  lossStartIter: z.number().int(),
  smoothedLoss: z.number()
})

/** What Caffe's SolverState lacks for an exact resume: random state, data positions, loss window. */
export type ResumeRecord = z.infer<typeof ResumeRecord>

/** Appends the record to an encoded SolverState as one length-delimited field. */
export function appendResumeRecord (solverState: Uint8Array, record: ResumeRecord): Uint8Array {
  const w = new WireWriter(solverState.length + 256)
  w.raw(solverState)
  w.tag(RESUME_FIELD, WireType.LEN)
  w.bytes(new TextEncoder().encode(JSON.stringify(record)))
  return w.finish()
}

/**
 * Finds our record in a .solverstate. A file written by real Caffe has none (undefined); a record
 * that is present but unreadable is ignored as well, because the Caffe part still resumes the run.
 */
export function readResumeRecord (solverState: Uint8Array): ResumeRecord | undefined {
  const r = new WireReader(solverState, 'caffe.SolverState')
  let found: Uint8Array | undefined
  while (r.pos < r.end) {
    const t = r.tag()
    const no = t >>> 3
    const wt = t & 7
    if (no === RESUME_FIELD && wt === WireType.LEN) found = r.bytes()
    else r.skip(wt, no)
  }
  if (found === undefined) return undefined
  try {
    const parsed = ResumeRecord.safeParse(JSON.parse(new TextDecoder().decode(found)))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}
