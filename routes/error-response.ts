import { z } from 'zod'

/** The one error shape every route answers with (see src/plugins/error-handler.ts). */
export const ErrorResponse = z.object({
  statusCode: z.number().int(),
  code: z.string(),
  error: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional()
})
