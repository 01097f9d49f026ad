import { blobUri, keyFromBlobUri } from '../../../blobstore/blob-uri.js'
import { PermanentJobError } from '../../lib/errors.js'
import { FetchError } from '../../net/safe-fetch.js'
import type { SafeFetcher } from '../../net/safe-fetch.js'
import { inspectArchive } from '../archive/index.js'
import type { JobRunner } from '../job-runner.js'

export interface DatafileRunnerDeps {
  fetcher: SafeFetcher
  allowPrivateUrls: boolean
  /** Largest datafile accepted (download or upload). */
  maxBytes: number
}

/**
 * Makes a datafile ready: downloads it from its URL into the blob store (streamed, size-limited,
 * private addresses refused unless allowed), or takes the uploaded copy, then reads it once to
 * learn and check what it holds (images by label, or an LMDB/LevelDB database).
 */
export function createDatafileRunner (deps: DatafileRunnerDeps): JobRunner<'datafile'> {
  return {
    type: 'datafile',
    run: async (ctx) => {
      const doc = ctx.job
      let key: string
      if (doc['blob-url'] !== null) {
        key = keyFromBlobUri(doc['blob-url'])
      } else if (doc.url !== null) {
        key = `${doc._id}/datafile`
        ctx.log.info({ url: doc.url }, 'datafile download started')
        try {
          const fetched = await deps.fetcher.open(doc.url, { allowPrivate: deps.allowPrivateUrls, maxBytes: deps.maxBytes, timeoutMs: 60_000, signal: ctx.signal })
          await ctx.blobs.put(key, fetched.body, { contentType: fetched.contentType ?? 'application/octet-stream', signal: ctx.signal })
        } catch (err) {
          // A 503 or a refused connection may pass; a 404, a private address or a size over the
          // limit will not, and fail the job at once with the fetcher's message.
          if (err instanceof FetchError && err.retryable) throw new Error(err.message, { cause: err })
          throw err
        }
      } else {
        throw new PermanentJobError('the datafile has neither a URL nor an uploaded file')
      }
      const { size } = await ctx.blobs.stat(key)
      const inspection = await inspectArchive(await ctx.blobs.get(key, { signal: ctx.signal }), { signal: ctx.signal })
      ctx.log.info({ format: inspection.format, size }, 'datafile checked')
      return (current) => ({
        ...current,
        'blob-url': blobUri(key),
        format: inspection.format,
        size,
        labels: inspection.format === 'images-tar-gz' ? [...inspection.labels] : null,
        'image-count': inspection.format === 'images-tar-gz' ? inspection.imageCount : null
      })
    }
  }
}
