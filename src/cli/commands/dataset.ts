import { Created, JobView, parseAnswer } from '../api-types.js'
import { CliError, UsageError } from '../cli-error.js'
import type { Command } from '../command.js'
import { waitForJob } from '../wait-job.js'

export const datasetCommands: Command[] = [{
  name: 'dataset create',
  summary: 'split a datafile into training and test sets (or pair two datafiles)',
  usage: 'et dataset create <datafile-id> [--split 0.8] | --training <datafile-id> --test <datafile-id>  [--wait]',
  description: `With one datafile, each label's images are split: --split of them for training
(0.8 and 80 both mean 80%), the rest for testing. With --training and --test, the two
datafiles are used as they are. Prints the new dataset's id.`,
  options: {
    split: { type: 'string', value: 'fraction', help: 'share of each label used for training (default 0.8)' },
    training: { type: 'string', value: 'datafile-id', help: 'the training datafile (with --test)' },
    test: { type: 'string', value: 'datafile-id', help: 'the test datafile (with --training)' },
    wait: { type: 'boolean', help: 'wait until the dataset is made' }
  },
  run: async (ctx, args) => {
    const training = args.string('training')
    const test = args.string('test')
    let body: unknown
    if (training !== undefined || test !== undefined) {
      args.expect([])
      if (training === undefined || test === undefined) throw new UsageError('--training and --test go together', 'dataset create')
      if (args.string('split') !== undefined) throw new UsageError('--split applies to one datafile, not to --training/--test', 'dataset create')
      body = { training: { 'datafile-id': training }, test: { 'datafile-id': test } }
    } else {
      const [datafile = ''] = args.expect(['datafile-id'])
      const split = args.number('split', 0, 100) ?? 0.8
      const fraction = split > 1 ? split / 100 : split
      if (fraction <= 0 || fraction >= 1) throw new UsageError('--split must leave images for both training and testing (between 0 and 1, or 0 and 100)', 'dataset create')
      const trainingShare = Math.round(fraction * 10_000) / 10_000
      body = { training: { 'datafile-id': datafile, 'split-percentage': trainingShare }, test: { 'datafile-id': datafile, 'split-percentage': Math.round((1 - trainingShare) * 10_000) / 10_000 } }
    }
    const client = await ctx.client()
    const created = parseAnswer(Created, await client.post('/datasets', body), 'POST /datasets')
    if (!args.flag('wait')) {
      ctx.term.note(`dataset ${created.id} created; it is made once its datafile is ready`)
      ctx.result(created, `${created.id}\n`)
      return 0
    }
    const done = await waitForJob(ctx.term, client, '/datasets', created.id, JobView, `making dataset ${created.id}`)
    if (done['processing-state'] !== 'finished_successfully') {
      if (ctx.json) ctx.result(done, '')
      throw new CliError(`dataset ${created.id} ${done['processing-state']}: ${done['processing-log']}`)
    }
    ctx.term.note(`dataset ${created.id} ready`)
    ctx.result(done, `${created.id}\n`)
    return 0
  }
}]
