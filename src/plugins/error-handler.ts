import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance } from 'fastify'
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod'
import { AppError, TooManyRequestsError } from '../lib/errors.js'
import { DASHBOARD_CLIENT_HEADER } from './dashboard.js'

interface ErrorBody {
  statusCode: number
  code: string
  error: string
  message: string
  details?: Record<string, unknown>
}

export function body (statusCode: number, code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message, ...(details === undefined ? {} : { details }) }
}

/**
 * The one error handler: every failure leaves as `{ statusCode, code, error, message }`
 * (plus `details` for validation), with our stable ET_* codes. Unexpected errors are logged
 * and answered with a generic 500 that leaks nothing.
 */
export default fp(async function errorHandler (app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    // A 401 with `WWW-Authenticate: Basic` makes browsers pop up their own login dialog over
    // the dashboard's sign-in form; the dashboard marks its requests so the header is left out.
    if (err.statusCode === 401 && request.headers[DASHBOARD_CLIENT_HEADER] !== undefined) reply.removeHeader('www-authenticate')
    if (err instanceof AppError) {
      if (err.statusCode >= 500) request.log.error({ err }, 'request failed')
      if (err instanceof TooManyRequestsError) reply.header('retry-after', String(err.retryAfterSeconds))
      return reply.code(err.statusCode).send(body(err.statusCode, err.code, err.message, err.details))
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = err.validationContext ?? 'request'
      const issues = err.validation.map((v) => {
        const path = v.instancePath.split('/').filter((s) => s !== '').join('.')
        return { path: path === '' ? where : `${where}.${path}`, message: v.message ?? 'is invalid' }
      })
      const message = issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join('; ')
      return reply.code(400).send(body(400, 'ET_VALIDATION', message, { issues }))
    }
    if (isResponseSerializationError(err)) {
      request.log.error({ err, cause: err.cause }, 'response did not match its schema')
      return reply.code(500).send(body(500, 'ET_INTERNAL', 'internal server error'))
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500
    if (status === 401 || status === 407) {
      return reply.code(401).send(body(401, 'ET_UNAUTHORIZED', 'valid username and password required (HTTP Basic authentication)'))
    }
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (bad JSON, body too large, wrong content type) keep their
      // message, which names the problem, under our code scheme.
      return reply.code(status).send(body(status, fastifyCode(err.code, status), clientMessage(err, status)))
    }
    request.log.error({ err }, 'request failed')
    return reply.code(500).send(body(500, 'ET_INTERNAL', 'internal server error'))
  })

  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send(body(404, 'ET_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`))
  })
}, { name: 'error-handler' })

function fastifyCode (code: string | undefined, status: number): string {
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) return 'ET_PAYLOAD_TOO_LARGE'
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) return 'ET_UNSUPPORTED_MEDIA_TYPE'
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_JSON_BODY' || /JSON/.test(code ?? '')) return 'ET_INVALID_JSON'
  return status === 400 ? 'ET_BAD_REQUEST' : `ET_HTTP_${status}`
}

function clientMessage (err: FastifyError, status: number): string {
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 'request body is too large'
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return `request body is not valid JSON: ${err.message}`
  return err.message !== '' ? err.message : (STATUS_CODES[status] ?? 'bad request')
}
