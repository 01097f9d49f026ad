import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, extname } from 'node:path'
import { ClassifyJobView, Created, parseAnswer } from '../api-types.js'
import { CliError, UsageError } from '../cli-error.js'
import type { Command } from '../command.js'
import { table } from '../format.js'
import type { FormPart } from '../multipart-body.js'
import { waitForJob } from '../wait-job.js'

const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.bmp': 'image/bmp', '.webp': 'image/webp', '.tif': 'image/tiff', '.tiff': 'image/tiff' }

export const classifyCommands: Command[] = [{
  name: 'classify',
  summary: 'classify images (files are uploaded, URLs fetched by the server) and print the top labels',
  usage: 'et classify <classifier-id> <image-file|url>... [--top <k>] [--no-wait] [--notify-url <url>]',
  description: `Uploads the image files and passes the URLs in one classify job, waits for it, and
prints a table: for each image its top-k labels with their probabilities, best first.`,
  options: {
    top: { type: 'string', value: 'k', help: 'labels shown per image (default 5; the server keeps the top 5)' },
    'no-wait': { type: 'boolean', help: 'print the classify job\'s id and return at once' },
    'notify-url': { type: 'string', value: 'url', help: 'POST a signed summary there when the job ends (webhook)' }
  },
  run: async (ctx, args) => {
    const [classifier = '', ...images] = args.expect(['classifier-id', 'image-file|url'], { atLeast: true })
    const top = args.number('top', 1, 100) ?? 5
    const parts: FormPart[] = []
    const files: string[] = []
    for (const image of images) {
      if (/^https?:\/\//i.test(image)) {
        parts.push({ kind: 'field', name: 'urls', value: image })
        continue
      }
      const info = await stat(image).catch(() => null)
      if (info === null || !info.isFile()) throw new UsageError(`${image}: not an image file nor an http(s) URL`, 'classify')
      files.push(image)
      parts.push({ kind: 'file', name: 'files', filename: basename(image), contentType: IMAGE_TYPES[extname(image).toLowerCase()] ?? 'application/octet-stream', size: info.size, open: () => createReadStream(image) })
    }
    const notify = args.string('notify-url')
    if (notify !== undefined) parts.push({ kind: 'field', name: 'notify-url', value: notify })
    const client = await ctx.client()
    const created = parseAnswer(Created, await client.upload(`/classifiers/${encodeURIComponent(classifier)}/classify`, parts), 'POST /classifiers/:id/classify')
    if (args.flag('no-wait')) {
      ctx.term.note(`classify job ${created.id} queued`)
      ctx.result(created, `${created.id}\n`)
      return 0
    }
    const job = await waitForJob(ctx.term, client, '/classify-jobs', created.id, ClassifyJobView, `classifying ${images.length} image${images.length === 1 ? '' : 's'}`)
    if (job['processing-state'] !== 'finished_successfully') {
      if (ctx.json) ctx.result(job, '')
      throw new CliError(`classify job ${job.id} ${job['processing-state']}: ${job['processing-log']}`)
    }
    // The server lists URL images first, then uploads in the order sent; show each under the
    // name it was given on the command line.
    let fileIndex = 0
    const results = job.images.map((image) => {
      const shown = image.url ?? files[fileIndex++] ?? image.filename ?? image.key
      const predictions = (job.predictions[image.key] ?? []).slice(0, top).map((p) => ({ label: p.label, probability: p.probability }))
      return { image: shown, key: image.key, label: job.results[image.key] ?? null, predictions }
    })
    const rows = results.flatMap((r) => r.predictions.length === 0
      ? [[r.image, r.label ?? '-', '-']]
      : r.predictions.map((p, i) => [i === 0 ? r.image : '', p.label, p.probability.toFixed(4)]))
    ctx.result({ id: job.id, state: job['processing-state'], images: results }, table(['IMAGE', 'LABEL', 'PROBABILITY'], rows))
    return 0
  }
}]
