import { z } from 'zod'
import { ValidationError } from '../src/lib/errors.js'

/** The one error shape every route answers with (see src/plugins/error-handler.ts). */
export const ErrorResponse = z.object({
  statusCode: z.number().int(),
  code: z.string(),
  error: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional()
})

/**
 * For bodies parsed in a handler (multipart) rather than by the route schema: the same
 * message and `details.issues` shape as schema validation failures.
 */
export function validationError (error: z.ZodError, where: string): ValidationError {
  const issues = error.issues.map((issue) => ({ path: [where, ...issue.path.map(String)].join('.'), message: issue.message }))
  return new ValidationError(issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join('; '), { issues })
}
