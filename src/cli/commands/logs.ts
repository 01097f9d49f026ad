import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ApiError, CliError, UsageError } from '../cli-error.js'
import type { ApiClient } from '../api-client.js'
import type { Command } from '../command.js'

export const logsCommands: Command[] = [{
  name: 'logs',
  summary: 'print a training or classify job\'s log (Caffe\'s output)',
  usage: 'et logs <job-id> [--follow] [--stream stderr|stdout]',
  description: 'With --follow, keeps printing new output until the job ends.',
  options: {
    follow: { type: 'boolean', short: 'f', help: 'stream new output until the job ends' },
    stream: { type: 'string', value: 'stderr|stdout', help: 'which output (default stderr, where Caffe logs)' }
  },
  run: async (ctx, args) => {
    const [id = ''] = args.expect(['job-id'])
    const stream = args.string('stream') ?? 'stderr'
    if (stream !== 'stderr' && stream !== 'stdout') throw new UsageError('--stream must be stderr or stdout', 'logs')
    const client = await ctx.client()
    const collection = await jobCollection(client, id)
    const query = new URLSearchParams({ stream, follow: String(args.flag('follow')) })
    const log = await client.open(`/${collection}/${encodeURIComponent(id)}/logs?${query.toString()}`)
    if (!ctx.json) {
      await pipeline(log.body, ctx.term.io.stdout, { end: false })
      return 0
    }
    const chunks: Buffer[] = []
    for await (const chunk of log.body as Readable) chunks.push(Buffer.from(chunk as Uint8Array))
    ctx.result({ id, type: collection === 'training-jobs' ? 'training-job' : 'classify-job', stream, log: Buffer.concat(chunks).toString('utf8') }, '')
    return 0
  }
}]

/** Which collection the id is in: a training job or a classify job. */
async function jobCollection (client: ApiClient, id: string): Promise<'training-jobs' | 'classify-jobs'> {
  for (const collection of ['training-jobs', 'classify-jobs'] as const) {
    try {
      await client.get(`/${collection}/${encodeURIComponent(id)}`)
      return collection
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err
    }
  }
  throw new CliError(`no training job or classify job ${id}`)
}
