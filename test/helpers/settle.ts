import type { FastifyInstance } from 'fastify'

export type JobView = Record<string, unknown> & { id: string, 'processing-state': string, 'processing-log': string, 'worker-id': string | null, attempts: number }

/**
 * Polls a job through the API until it leaves pending/processing, and returns it. On timeout
 * the error carries the job's last state and log, so a slow or stuck job says why.
 */
export async function settleJob (app: FastifyInstance, auth: string, path: string, ms = 60_000): Promise<JobView> {
  const deadline = Date.now() + ms
  let doc: JobView | undefined
  for (;;) {
    doc = (await app.inject({ url: path, headers: { authorization: auth } })).json()
    if (doc !== undefined && !['pending', 'processing'].includes(doc['processing-state'])) return doc
    if (Date.now() > deadline) throw new Error(`${path} still ${doc?.['processing-state'] ?? '?'} after ${ms} ms (attempts ${String(doc?.attempts)}, worker ${String(doc?.['worker-id'])}): ${doc?.['processing-log'] ?? ''}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
