import { ArchiveError } from './archive-error.js'
import type { ArchiveInput } from './archive-source.js'
import { quoteName } from './entry-path.js'
import { inspectArchive } from './inspect-archive.js'
import type { ArchiveInspection } from './inspect-archive.js'
import type { ArchiveOptions } from './walk-archive.js'

/** Two inspected datafiles that can serve as one dataset. */
export interface DatafilePair {
  training: ArchiveInspection
  test: ArchiveInspection
}

const KIND = { 'images-tar-gz': 'an archive of images', lmdb: 'an LMDB database', leveldb: 'a LevelDB database' } as const

/**
 * Checks that a training and a test datafile fit together: the same kind of content and, for
 * images, every test label present in training (the label numbers come from training alone).
 * Throws an ArchiveError ('layout' or 'label-mismatch') naming what does not fit.
 */
export function checkDatafilePair (training: ArchiveInspection, test: ArchiveInspection): DatafilePair {
  if (training.format !== test.format) {
    throw new ArchiveError('layout', `the training datafile is ${KIND[training.format]} but the test datafile is ${KIND[test.format]}; use the same kind for both`)
  }
  if (training.format === 'images-tar-gz' && test.format === 'images-tar-gz') {
    const known = new Set(training.labels)
    const missing = test.labels.filter((l) => !known.has(l))
    if (missing.length > 0) {
      const shown = missing.slice(0, 5).map(quoteName).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '')
      throw new ArchiveError('label-mismatch', `the test datafile has label${missing.length > 1 ? 's' : ''} ${shown} that the training datafile does not have`)
    }
  }
  return { training, test }
}

function prefixed (side: string, err: unknown): unknown {
  return err instanceof ArchiveError ? new ArchiveError(err.problem, `${side} datafile: ${err.message}`, { cause: err }) : err
}

/**
 * Inspects both datafiles concurrently, then checks them with checkDatafilePair. When one is
 * bad the other's read is abandoned; the first failure is thrown, its message saying which side.
 */
export async function inspectDatafilePair (training: ArchiveInput, test: ArchiveInput, options: ArchiveOptions = {}): Promise<DatafilePair> {
  const stop = new AbortController()
  const signal = options.signal === undefined ? stop.signal : AbortSignal.any([options.signal, stop.signal])
  let first: { error: unknown } | undefined
  const run = async (side: string, input: ArchiveInput): Promise<ArchiveInspection> => {
    try {
      return await inspectArchive(input, { ...options, signal })
    } catch (err) {
      if (first === undefined) {
        first = { error: prefixed(side, err) }
        stop.abort(first.error)
      }
      throw err
    }
  }
  const [a, b] = await Promise.allSettled([run('training', training), run('test', test)])
  if (first !== undefined) throw first.error
  if (a.status !== 'fulfilled' || b.status !== 'fulfilled') throw new Error('unreachable: a side failed without an error')
  return checkDatafilePair(a.value, b.value)
}
