/**
 * Typed application errors. Every error a client may see carries a stable `code`
 * (like Fastify's FST_ERR_*) and an HTTP `statusCode`; the one error handler turns
 * them into `{ statusCode, code, error, message }`.
 */
export class AppError extends Error {
  readonly code: string
  readonly statusCode: number
  readonly details: Record<string, unknown> | undefined

  constructor (statusCode: number, code: string, message: string, options?: { cause?: unknown, details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.statusCode = statusCode
    this.code = code
    this.details = options?.details
  }
}

export class NotFoundError extends AppError {
  constructor (message = 'not found', options?: { cause?: unknown }) {
    super(404, 'ET_NOT_FOUND', message, options)
  }
}

export class ConflictError extends AppError {
  constructor (message = 'conflict', options?: { cause?: unknown, details?: Record<string, unknown> }) {
    super(409, 'ET_CONFLICT', message, options)
  }
}

export class UnauthorizedError extends AppError {
  constructor (message = 'authentication required') {
    super(401, 'ET_UNAUTHORIZED', message)
  }
}

export class ForbiddenError extends AppError {
  constructor (message = 'forbidden') {
    super(403, 'ET_FORBIDDEN', message)
  }
}

export class ValidationError extends AppError {
  constructor (message: string, details?: Record<string, unknown>) {
    super(400, 'ET_VALIDATION', message, details === undefined ? undefined : { details })
  }
}

export class PayloadTooLargeError extends AppError {
  constructor (message: string) {
    super(413, 'ET_PAYLOAD_TOO_LARGE', message)
  }
}

/** The client must slow down; `retryAfterSeconds` goes out as the Retry-After header. */
export class TooManyRequestsError extends AppError {
  readonly retryAfterSeconds: number
  constructor (message: string, retryAfterSeconds: number) {
    super(429, 'ET_TOO_MANY_REQUESTS', message)
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** A backend (database, blob store, queue) could not be reached; callers may retry. */
export class UnavailableError extends AppError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(503, 'ET_UNAVAILABLE', message, options)
  }
}

/**
 * A job failure that no retry can fix (bad archive, prototxt that does not parse).
 * Workers mark the job failed at once instead of spending more attempts on it.
 */
export class PermanentJobError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'PermanentJobError'
  }
}

/** Turns anything thrown into an Error without losing what it was. */
export function coerceError (value: unknown): Error {
  if (value instanceof Error) return value
  if (typeof value === 'string') return new Error(value)
  try {
    return new Error(JSON.stringify(value))
  } catch {
    return new Error(String(value))
  }
}

/** Reads a numeric `statusCode` off an unknown error (nano, undici and the AWS SDK all set one). */
export function statusCodeOf (err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const value: unknown = Reflect.get(err, 'statusCode')
  return typeof value === 'number' ? value : undefined
}
