import { Created, parseAnswer } from '../api-types.js'
import { UsageError } from '../cli-error.js'
import type { Command } from '../command.js'
import { followTraining } from '../follow-training.js'

const interruptHelp = `While following, Ctrl-C asks "cancel the training job? [y/N]": y cancels it, anything else
leaves it running; either way et stops (exit code 130). When stdin is not a terminal the
answer is read as a line from stdin (e.g. from a script writing "y" to et's stdin).
Exit codes: 0 finished, 1 failed or cancelled, 130 interrupted.`

export const trainCommands: Command[] = [{
  name: 'train',
  summary: 'start a training job for a solver, and optionally follow it',
  usage: 'et train <solver-id> [--follow] [--notify-url <url>]',
  description: `Queues a training run and prints its id. With --follow, shows a progress bar on stderr
(iteration/max-iter, loss, test accuracy) until the job ends.
${interruptHelp}`,
  options: {
    follow: { type: 'boolean', short: 'f', help: 'follow the job until it ends' },
    'notify-url': { type: 'string', value: 'url', help: 'POST a signed summary there when the job ends (webhook)' }
  },
  run: async (ctx, args) => {
    const [solver = ''] = args.expect(['solver-id'])
    const notify = args.string('notify-url')
    if (notify !== undefined && !/^https?:\/\//i.test(notify)) throw new UsageError(`--notify-url must be an http(s) URL, not ${notify}`, 'train')
    const client = await ctx.client()
    const job = parseAnswer(Created, await client.post('/training-jobs', { 'solver-id': solver, ...(notify === undefined ? {} : { 'notify-url': notify }) }), 'POST /training-jobs')
    if (!args.flag('follow')) {
      ctx.term.note(`training job ${job.id} queued; follow it with: et follow ${job.id}`)
      ctx.result(job, `${job.id}\n`)
      return 0
    }
    // The id first, so it is known even if the follow is interrupted.
    if (!ctx.json) ctx.term.out(`${job.id}\n`)
    return await followTraining(ctx, client, job.id)
  }
}, {
  name: 'follow',
  summary: 'follow a training job\'s progress until it ends',
  usage: 'et follow <training-job-id>',
  description: `Shows the progress bar of et train --follow for a job that already exists.
${interruptHelp}`,
  options: {},
  run: async (ctx, args) => {
    const [id = ''] = args.expect(['training-job-id'])
    return await followTraining(ctx, await ctx.client(), id)
  }
}]
