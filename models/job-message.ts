import { z } from 'zod'

/**
 * The wake-up call a scheduler carries: the original's JobDescriptor wire format,
 * `{"doc-id-to-process": "<id>"}`. It names a document and nothing else; the worker reads the
 * document to learn what to do, so a duplicate or stale message is harmless.
 */
export const JobMessage = z.object({
  'doc-id-to-process': z.string().min(1).max(200)
}).strict()
export type JobMessage = z.infer<typeof JobMessage>
