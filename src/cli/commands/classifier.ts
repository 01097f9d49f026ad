import { readFile } from 'node:fs/promises'
import { Created, parseAnswer } from '../api-types.js'
import { UsageError } from '../cli-error.js'
import type { Command } from '../command.js'

export const classifierCommands: Command[] = [{
  name: 'classifier create',
  summary: 'make a classifier from a trained model and a deploy prototxt',
  usage: 'et classifier create --training-job <id> --deploy <deploy.prototxt> --width <px> --height <px> [--scale <s>] [--color]',
  description: `Images are resized to --width × --height, read as grey unless --color, and their pixel
values multiplied by --scale (as the net's training data was). Prints the new classifier's id.`,
  options: {
    'training-job': { type: 'string', value: 'id', help: 'a finished training job (its model is used)' },
    deploy: { type: 'string', value: 'file', help: 'the deploy prototxt (an Input layer, ending in Softmax)' },
    width: { type: 'string', value: 'px', help: 'image width the net takes' },
    height: { type: 'string', value: 'px', help: 'image height the net takes' },
    scale: { type: 'string', value: 's', help: 'pixel scale (default 1)' },
    color: { type: 'boolean', help: 'feed colour (3-channel) images instead of grey' }
  },
  run: async (ctx, args) => {
    args.expect([])
    const job = args.required('training-job')
    const path = args.required('deploy')
    const width = args.number('width', 1, 4096)
    const height = args.number('height', 1, 4096)
    if (width === undefined || height === undefined) throw new UsageError('--width and --height are required', 'classifier create')
    const scale = args.number('scale', 0, 1e6) ?? 1
    let deploy: string
    try {
      deploy = await readFile(path, 'utf8')
    } catch {
      throw new UsageError(`--deploy ${path}: cannot read that file`, 'classifier create')
    }
    const client = await ctx.client()
    const created = parseAnswer(Created, await client.post('/classifiers', {
      'training-job-id': job,
      specification: deploy,
      'image-width': width,
      'image-height': height,
      scale,
      color: args.flag('color')
    }), 'POST /classifiers')
    ctx.term.note(`classifier ${created.id} created`)
    ctx.result(created, `${created.id}\n`)
    return 0
  }
}]
