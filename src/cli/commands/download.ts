import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Command } from '../command.js'
import { bytes } from '../format.js'

export const downloadCommands: Command[] = [{
  name: 'download',
  summary: 'download the trained model (.caffemodel) of a finished training job',
  usage: 'et download <training-job-id> [-o <file>]',
  description: 'Streams the model to disk (to <file>.part, renamed when complete). -o - writes it to stdout.',
  options: {
    output: { type: 'string', short: 'o', value: 'file', help: 'where to write it (default: <job-id>.caffemodel)' }
  },
  run: async (ctx, args) => {
    const [id = ''] = args.expect(['training-job-id'])
    const client = await ctx.client()
    const download = await client.open(`/training-jobs/${encodeURIComponent(id)}/model`)
    const out = args.string('output') ?? download.fileName ?? `${id}.caffemodel`
    let received = 0
    const progress = new Transform({
      transform (chunk: Buffer, _encoding, done) {
        received += chunk.length
        ctx.term.status(`downloading ${out}: ${bytes(received)}${download.size === undefined ? '' : ` of ${bytes(download.size)}`}`)
        done(null, chunk)
      }
    })
    if (out === '-') {
      await pipeline(download.body, progress, ctx.term.io.stdout, { end: false })
      ctx.term.clearStatus()
      return 0
    }
    const partial = `${out}.part`
    try {
      await pipeline(download.body, progress, createWriteStream(partial))
      await rename(partial, out)
    } catch (err) {
      await rm(partial, { force: true })
      throw err
    }
    ctx.term.note(`saved ${out} (${bytes(received)})`)
    ctx.result({ id, file: out, bytes: received }, `${out}\n`)
    return 0
  }
}]
