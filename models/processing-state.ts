import { z } from 'zod'

/**
 * Where a job document is in its life cycle. The first four are the original's values
 * (clients of the original compare against these strings); `cancelled` is new.
 */
export const ProcessingState = z.enum(['pending', 'processing', 'finished_successfully', 'failed', 'cancelled'])
export type ProcessingState = z.infer<typeof ProcessingState>

const transitions: Record<ProcessingState, readonly ProcessingState[]> = {
  pending: ['processing', 'cancelled', 'failed'],
  // back to pending: the reaper returning an expired lease, or a worker releasing on shutdown.
  processing: ['finished_successfully', 'failed', 'cancelled', 'pending'],
  finished_successfully: [],
  failed: [],
  cancelled: []
}

export function canTransition (from: ProcessingState, to: ProcessingState): boolean {
  return transitions[from].includes(to)
}
