import type { Readable } from 'node:stream'
import { z } from 'zod'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { DocId, IdParams } from '../models/common.js'
import { LOG_STREAMS } from '../src/jobs/job-logs.js'
import type { Download, LogJobType } from '../src/services/artifacts.js'
import { ErrorResponse } from './error-response.js'
import { security } from './resource-routes.js'

const LogQuery = z.object({
  stream: z.enum(LOG_STREAMS).default('stderr').describe("which output: stderr (Caffe's log, the default) or stdout"),
  follow: z.enum(['true', 'false', '1', '0']).default('false').transform((v) => v === 'true' || v === '1')
    .describe('keep the response open and stream new output until the job ends'),
  from: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0).describe('first byte to send (to continue where a previous read stopped)')
}).strict()

const SnapshotParams = z.object({
  id: DocId,
  name: z.string().min(1).max(200).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a snapshot file name')
}).strict()

/**
 * Job artifacts: logs (also while the job runs, with follow mode), the trained model and each
 * snapshot. All are scoped to the caller by the artifacts service; bodies are streamed.
 */
export async function artifactRoutes (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()

  const logRoute = (type: LogJobType, prefix: string, tag: string): void => {
    app.get(`${prefix}/:id/logs`, {
      schema: {
        tags: [tag],
        summary: `Read the log of a ${type} (text/plain); follow=true streams new output while it runs`,
        security,
        params: IdParams,
        querystring: LogQuery,
        response: { 400: ErrorResponse, 404: ErrorResponse }
      }
    }, async (request, reply) => {
      const stop = closeSignal(reply)
      const body = await app.artifacts.jobLog(request.tenantId, type, request.params.id, { ...request.query, signal: stop })
      return await sendText(reply, body)
    })
  }
  logRoute('training-job', '/training-jobs', 'training-jobs')
  logRoute('classify-job', '/classify-jobs', 'classify-jobs')

  app.get('/training-jobs/:id/model', {
    schema: {
      tags: ['training-jobs'],
      summary: 'Download the trained .caffemodel of a finished training job',
      security,
      params: IdParams,
      response: { 404: ErrorResponse }
    }
  }, async (request, reply) => await sendDownload(reply, await app.artifacts.trainedModel(request.tenantId, request.params.id)))

  app.get('/training-jobs/:id/snapshots/:name', {
    schema: {
      tags: ['training-jobs'],
      summary: 'Download one snapshot file (.caffemodel or .solverstate) listed in the job\'s snapshots',
      security,
      params: SnapshotParams,
      response: { 400: ErrorResponse, 404: ErrorResponse }
    }
  }, async (request, reply) => await sendDownload(reply, await app.artifacts.snapshot(request.tenantId, request.params.id, request.params.name)))
}

async function sendText (reply: FastifyReply, body: Readable): Promise<FastifyReply> {
  reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').type('text/plain; charset=utf-8')
  return await reply.send(body)
}

async function sendDownload (reply: FastifyReply, file: Download): Promise<FastifyReply> {
  reply
    .header('content-length', file.size)
    .header('content-disposition', `attachment; filename="${file.fileName.replace(/[^A-Za-z0-9._-]/g, '_')}"`)
    .type('application/octet-stream')
  return await reply.send(file.body)
}

/** Aborts when the client goes away, so a follow stops polling the blob store for nobody. */
function closeSignal (reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  // The response's close, not the request's: a request emits 'close' once its body is read.
  reply.raw.once('close', () => { controller.abort() })
  return controller.signal
}
