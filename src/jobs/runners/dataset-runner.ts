import { blobUri, keyFromBlobUri } from '../../../blobstore/blob-uri.js'
import type { Datafile } from '../../../models/datafile.js'
import { splitFraction } from '../../../models/dataset.js'
import { NotFoundError, PermanentJobError } from '../../lib/errors.js'
import { compareNames, inspectArchive, splitArchive } from '../archive/index.js'
import type { JobRunner, Readiness } from '../job-runner.js'
import type { JobStore } from '../job-store.js'

const KIND = { 'images-tar-gz': 'an archive of images', lmdb: 'an LMDB database', leveldb: 'a LevelDB database' } as const

/**
 * Makes training and test sets. From one datafile: a stratified, deterministic split by
 * percentage (0.7 and 70 both mean 70%) into two archives. From two datafiles: checks they fit
 * together and uses them as they are. Either way the label map comes from the training side.
 */
export function createDatasetRunner (): JobRunner<'dataset'> {
  return {
    type: 'dataset',
    ready: async (job, store) => await datafilesReady(store, [job.training['datafile-id'], job.test['datafile-id']]),
    run: async (ctx) => {
      const job = ctx.job
      const training = await ctx.store.read('datafile', job.training['datafile-id'])
      if (job.training['datafile-id'] === job.test['datafile-id']) {
        if (training.format !== 'images-tar-gz' || training['blob-url'] === null) {
          throw new PermanentJobError(`datafile ${training._id} is ${KIND[training.format ?? 'lmdb']}, which cannot be split by percentage; give a training datafile and a test datafile instead`)
        }
        const trainShare = splitFraction(job.training['split-percentage'])
        const testShare = splitFraction(job.test['split-percentage'])
        const source = keyFromBlobUri(training['blob-url'])
        const inspection = await inspectArchive(await ctx.blobs.get(source, { signal: ctx.signal }), { signal: ctx.signal })
        if (inspection.format !== 'images-tar-gz') throw new PermanentJobError(`datafile ${training._id} no longer holds images`)
        const split = splitArchive(await ctx.blobs.get(source, { signal: ctx.signal }), { inspection, trainingFraction: trainShare / (trainShare + testShare), signal: ctx.signal })
        const trainingKey = `${job._id}/training.tar.gz`
        const testKey = `${job._id}/testing.tar.gz`
        const [report] = await Promise.all([
          split.done,
          ctx.blobs.put(trainingKey, split.training, { contentType: 'application/gzip', signal: ctx.signal }),
          ctx.blobs.put(testKey, split.test, { contentType: 'application/gzip', signal: ctx.signal })
        ])
        const labels = Object.keys(report.training.counts).sort(compareNames)
        ctx.log.info({ training: report.training.imageCount, test: report.test.imageCount, labels: labels.length }, 'dataset split')
        return (current) => ({ ...current, training: { ...current.training, url: blobUri(trainingKey) }, test: { ...current.test, url: blobUri(testKey) }, labels })
      }
      const test = await ctx.store.read('datafile', job.test['datafile-id'])
      checkPair(training, test)
      return (current) => ({
        ...current,
        training: { ...current.training, url: training['blob-url'] },
        test: { ...current.test, url: test['blob-url'] },
        labels: training.labels === null ? null : [...training.labels]
      })
    }
  }
}

/** A job waits while any of its datafiles is still being made, and fails if one failed. */
export async function datafilesReady (store: JobStore, ids: string[]): Promise<Readiness> {
  for (const id of new Set(ids)) {
    let datafile: Datafile
    try {
      datafile = await store.read('datafile', id)
    } catch (err) {
      if (err instanceof NotFoundError) return { kind: 'fail', reason: `datafile ${id} no longer exists` }
      throw err
    }
    const state = datafile['processing-state']
    if (state === 'pending' || state === 'processing') return { kind: 'wait', delayMs: 2000, reason: `waiting for datafile ${id} (${state})` }
    if (state !== 'finished_successfully') {
      return { kind: 'fail', reason: `datafile ${id} ${state === 'cancelled' ? 'was cancelled' : 'failed'}${datafile['processing-log'] === '' ? '' : `: ${datafile['processing-log']}`}` }
    }
  }
  return { kind: 'ready' }
}

// Two datafiles make a dataset only if they hold the same kind of data and every test label is
// a training label (the label numbers come from the training side alone).
function checkPair (training: Datafile, test: Datafile): void {
  if (training.format === null || test.format === null || training['blob-url'] === null || test['blob-url'] === null) {
    throw new PermanentJobError('a datafile of this dataset has no stored data')
  }
  if (training.format !== test.format) {
    throw new PermanentJobError(`the training datafile is ${KIND[training.format]} but the test datafile is ${KIND[test.format]}; use the same kind for both`)
  }
  const known = new Set(training.labels ?? [])
  const missing = (test.labels ?? []).filter((label) => !known.has(label))
  if (missing.length > 0) {
    throw new PermanentJobError(`the test datafile has label${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).map((l) => `"${l}"`).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''} that the training datafile does not have`)
  }
}
