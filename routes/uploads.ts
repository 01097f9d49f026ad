import fastifyMultipart from '@fastify/multipart'
import type { FastifyInstance } from 'fastify'

export interface UploadOptions {
  maxUploadBytes: number
}

/**
 * Enables multipart bodies in the calling scope only: the plugin adds hooks to every request
 * of its scope, which the read routes should not pay for.
 */
export async function enableUploads (scope: FastifyInstance, options: UploadOptions): Promise<void> {
  await scope.register(fastifyMultipart, {
    limits: { fileSize: options.maxUploadBytes, files: 100, fields: 200, fieldSize: 64 * 1024, parts: 300 }
  })
  // A request that failed after its files were stored must not leave them behind.
  scope.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode >= 400) await scope.uploads.discard(request)
  })
}
