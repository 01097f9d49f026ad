import type { FastifyRequest } from 'fastify'

/**
 * The API's URL as this client reached it (scheme and Host header). A job's webhook links to
 * the job with it, so the receiver gets URLs that worked for whoever created the job.
 */
export function apiBaseUrl (request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`
}
