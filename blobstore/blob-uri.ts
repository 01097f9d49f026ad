import { ValidationError } from '../src/lib/errors.js'
import { assertSafeKey } from './blob-key.js'

const SCHEME = 'cbfs://'

/**
 * The original's logical blob URI: `cbfs://<key>`, a path relative to whichever blob store
 * is configured (not a CBFS server address). The key is written verbatim, not
 * percent-encoded, as the original did, so `keyFromBlobUri(blobUri(k)) === k` for every
 * safe key, including keys with spaces, `%` or non-ASCII characters.
 */
export function blobUri (key: string): string {
  assertSafeKey(key)
  return `${SCHEME}${key}`
}

/** Extracts the key from a `cbfs://<key>` URI; ValidationError for other schemes or unsafe keys. */
export function keyFromBlobUri (uri: string): string {
  if (typeof uri !== 'string' || !uri.startsWith(SCHEME)) {
    const shown = typeof uri === 'string' ? JSON.stringify(uri.slice(0, 80)) : typeof uri
    throw new ValidationError(`not a cbfs:// blob URI: ${shown}`, { problem: 'scheme' })
  }
  const key = uri.slice(SCHEME.length)
  assertSafeKey(key, 'blob URI key')
  return key
}

/** True when `value` looks like a logical blob URI (it may still hold an unsafe key). */
export function isBlobUri (value: string): boolean {
  return value.startsWith(SCHEME)
}
