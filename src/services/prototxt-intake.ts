import type { BlobStore } from '../../blobstore/blob-store.js'
import { blobUri } from '../../blobstore/blob-uri.js'
import { MAX_PROTOTXT_BYTES } from '../../models/solver.js'
import { ValidationError } from '../lib/errors.js'
import { FetchError } from '../net/safe-fetch.js'
import type { SafeFetcher } from '../net/safe-fetch.js'

/** What kind of prototxt a file must be; each kind is checked by the engine's parser. */
export type PrototxtKind = 'solver' | 'net' | 'deploy'

/** Facts read off a prototxt while checking it. */
export interface PrototxtSummary {
  maxIter?: number
  dataLayerType?: 'Data' | 'ImageData'
}

/**
 * Checks that a prototxt parses as the message its kind requires; throws an Error whose
 * message names the line and the problem.
 */
export type PrototxtChecker = (kind: PrototxtKind, text: string, fileName: string) => PrototxtSummary

/**
 * Takes a prototxt from a URL or inline text, checks it, and stores it under the owning
 * document's key, so a bad file is a 400 at creation instead of a failed job later.
 */
export class PrototxtIntake {
  private readonly fetcher: SafeFetcher
  private readonly blobs: BlobStore
  private readonly check: PrototxtChecker
  private readonly allowPrivate: boolean

  constructor (deps: { fetcher: SafeFetcher, blobs: BlobStore, check: PrototxtChecker, allowPrivateUrls: boolean }) {
    this.fetcher = deps.fetcher
    this.blobs = deps.blobs
    this.check = deps.check
    this.allowPrivate = deps.allowPrivateUrls
  }

  /** Fetches (or takes) and checks the text; `field` names the request field in errors. */
  async read (field: string, kind: PrototxtKind, source: { url?: string | undefined, text?: string | undefined }, fileName: string): Promise<{ text: string, summary: PrototxtSummary }> {
    let text: string
    if (source.text !== undefined) {
      text = source.text
    } else if (source.url !== undefined) {
      try {
        text = await this.fetcher.text(source.url, { allowPrivate: this.allowPrivate, maxBytes: MAX_PROTOTXT_BYTES, timeoutMs: 15_000 })
      } catch (err) {
        if (err instanceof FetchError) throw new ValidationError(`${field}: ${err.message}`, { field })
        throw err
      }
    } else {
      throw new ValidationError(`${field} is required`, { field })
    }
    try {
      return { text, summary: this.check(kind, text, fileName) }
    } catch (err) {
      throw new ValidationError(`${field}: ${err instanceof Error ? err.message : String(err)}`, { field })
    }
  }

  async store (key: string, text: string): Promise<string> {
    await this.blobs.put(key, text, { contentType: 'text/plain; charset=utf-8' })
    return blobUri(key)
  }
}
