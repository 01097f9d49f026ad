import type { FastifyRequest } from 'fastify'

/** Route options for the routes that put links to the API into what they create. */
export interface LinkOptions {
  /** The operator's `--public-url`; null: the URL each request came in on. */
  publicUrl: string | null
}

/**
 * The API's URL for links in a job's webhook. The operator's public URL when configured
 * (behind a proxy or load balancer the request's scheme and Host are the internal ones);
 * otherwise the URL as this client reached it, which worked for whoever created the job.
 */
export function apiBaseUrl (request: FastifyRequest, options: LinkOptions): string {
  return options.publicUrl ?? `${request.protocol}://${request.host}`
}
