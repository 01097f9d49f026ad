import { ClassifyJobView, DatafileView, JobView, Page, TrainingJobView, parseAnswer } from '../api-types.js'
import { UsageError } from '../cli-error.js'
import type { Command } from '../command.js'
import { num, table } from '../format.js'

const TYPES = { training: 'training-jobs', classify: 'classify-jobs', datafile: 'datafiles', dataset: 'datasets' } as const
type Kind = keyof typeof TYPES

export const jobsCommands: Command[] = [{
  name: 'jobs',
  summary: 'list your jobs (training, classify, datafiles, datasets) with their states, newest first',
  usage: 'et jobs [--type training|classify|datafile|dataset|all] [--limit <n>]',
  options: {
    type: { type: 'string', value: 'type', help: 'only this kind of job (default all)' },
    limit: { type: 'string', value: 'n', help: 'at most this many (default 20)' }
  },
  run: async (ctx, args) => {
    args.expect([])
    const type = args.string('type') ?? 'all'
    if (type !== 'all' && !(type in TYPES)) throw new UsageError(`--type must be one of training, classify, datafile, dataset or all, not ${type}`, 'jobs')
    const limit = args.number('limit', 1, 200) ?? 20
    const kinds = (type === 'all' ? Object.keys(TYPES) : [type]) as Kind[]
    const client = await ctx.client()
    const lists = await Promise.all(kinds.map(async (kind) => {
      const page = parseAnswer(Page, await client.get(`/${TYPES[kind]}?limit=${limit}`), `GET /${TYPES[kind]}`)
      return page.items.map((item) => parseAnswer(JobView, item, `GET /${TYPES[kind]}`))
    }))
    const jobs = lists.flat().sort((a, b) => b['created-at'].localeCompare(a['created-at'])).slice(0, limit)
    const rows = jobs.map((job) => [job['created-at'].slice(0, 19).replace('T', ' '), job.type, job.id, job['processing-state'], detail(job)])
    ctx.result(jobs, jobs.length === 0 ? 'no jobs yet\n' : table(['CREATED (UTC)', 'TYPE', 'ID', 'STATE', 'DETAIL'], rows))
    return 0
  }
}]

function detail (job: JobView): string {
  if (job['processing-state'] === 'failed') return (job['processing-log'].split('\n')[0] ?? '').slice(0, 80)
  if (job.type === 'training-job') {
    const progress = TrainingJobView.safeParse(job).data?.progress
    if (progress === null || progress === undefined) return ''
    const accuracy = progress['test-outputs'].accuracy
    return `${progress.iteration}/${progress['max-iter'] ?? '?'} loss ${num(progress.loss)}${accuracy === undefined ? '' : ` accuracy ${num(accuracy)}`}`
  }
  if (job.type === 'classify-job') {
    const images = ClassifyJobView.safeParse(job).data?.images.length
    return images === undefined ? '' : `${images} image${images === 1 ? '' : 's'}`
  }
  if (job.type === 'datafile') {
    const datafile = DatafileView.safeParse(job).data
    const count = datafile?.['image-count']
    return [datafile?.name ?? '', count === null || count === undefined ? '' : `${count} images`].filter((s) => s !== '').join(', ')
  }
  return ''
}
