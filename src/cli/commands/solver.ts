import { readFile } from 'node:fs/promises'
import { Created, parseAnswer } from '../api-types.js'
import { UsageError } from '../cli-error.js'
import type { Command } from '../command.js'

async function readText (path: string, option: string, command: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    throw new UsageError(`--${option} ${path}: cannot read that file`, command)
  }
}

export const solverCommands: Command[] = [{
  name: 'solver create',
  summary: 'upload a Caffe solver and net prototxt for a dataset',
  usage: 'et solver create --dataset <dataset-id> --solver <solver.prototxt> --net <train_test.prototxt>',
  description: `The server checks both files at once (a prototxt error is reported here) and points
the net's data layers at the dataset when it trains. Prints the new solver's id.`,
  options: {
    dataset: { type: 'string', value: 'dataset-id', help: 'the dataset to train on' },
    solver: { type: 'string', value: 'file', help: 'the solver prototxt' },
    net: { type: 'string', value: 'file', help: 'the train/test net prototxt' }
  },
  run: async (ctx, args) => {
    args.expect([])
    const dataset = args.required('dataset')
    const solver = await readText(args.required('solver'), 'solver', 'solver create')
    const net = await readText(args.required('net'), 'net', 'solver create')
    const client = await ctx.client()
    const created = parseAnswer(Created, await client.post('/solvers', { 'dataset-id': dataset, specification: solver, 'specification-net': net }), 'POST /solvers')
    const maxIter: unknown = created['max-iter']
    ctx.term.note(`solver ${created.id} created${typeof maxIter === 'number' ? ` (max_iter ${maxIter})` : ''}`)
    ctx.result(created, `${created.id}\n`)
    return 0
  }
}]
