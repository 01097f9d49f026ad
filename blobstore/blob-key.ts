import { ValidationError } from '../src/lib/errors.js'

/**
 * Limits chosen so that every backend can hold every valid key: S3 allows 1024-byte keys
 * (we leave room for the store prefix) and ext4/xfs allow 255-byte names (the file store
 * adds a temp-file prefix and suffix to a segment while writing).
 */
export const MAX_KEY_BYTES = 768
export const MAX_SEGMENT_BYTES = 200

// A lone surrogate has no UTF-8 form, so the key would change on its way to disk or S3.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

// C0 and C1 controls and DEL: invisible in logs, and NUL truncates paths in C libraries.
function hasControlCharacter (key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i)
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true
  }
  return false
}

function show (key: string): string {
  const quoted = JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key)
  return quoted
}

function reject (what: string, key: string, problem: string, message: string): never {
  throw new ValidationError(`${what} ${show(key)} ${message}`, { problem })
}

/**
 * Throws ValidationError unless `key` is a relative `/`-separated path that is safe on
 * every backend: not empty, no `.`/`..` or empty segments, not absolute, no backslash,
 * no control characters, no segment starting with `.` (reserved for store bookkeeping such
 * as temp files and CBFS's `/.cbfs/` API), within MAX_KEY_BYTES / MAX_SEGMENT_BYTES.
 * Stores call it before any I/O.
 */
export function assertSafeKey (key: unknown, what = 'blob key'): asserts key is string {
  if (typeof key !== 'string') throw new ValidationError(`${what} must be a string`, { problem: 'not-a-string' })
  if (key.length === 0) throw new ValidationError(`${what} is empty`, { problem: 'empty' })
  const bytes = Buffer.byteLength(key)
  if (bytes > MAX_KEY_BYTES) reject(what, key, 'too-long', `is ${bytes} bytes long; the limit is ${MAX_KEY_BYTES}`)
  if (hasControlCharacter(key)) reject(what, key, 'control-character', 'contains a control character')
  if (LONE_SURROGATE.test(key)) reject(what, key, 'invalid-unicode', 'contains a lone UTF-16 surrogate')
  if (key.includes('\\')) reject(what, key, 'backslash', 'contains a backslash')
  if (key.startsWith('/')) reject(what, key, 'absolute', 'is absolute; keys are relative paths')
  for (const segment of key.split('/')) {
    if (segment === '') reject(what, key, 'empty-segment', "has an empty segment ('//' or a trailing '/')")
    if (segment === '..' || segment === '.') reject(what, key, 'dot-segment', `has a '${segment}' segment`)
    if (segment.startsWith('.')) reject(what, key, 'reserved-segment', "has a segment starting with '.' (reserved for the store)")
    const segmentBytes = Buffer.byteLength(segment)
    if (segmentBytes > MAX_SEGMENT_BYTES) {
      reject(what, key, 'segment-too-long', `has a ${segmentBytes}-byte segment; the limit is ${MAX_SEGMENT_BYTES}`)
    }
  }
}

/** The boolean form of assertSafeKey, for filtering names found in a backend's listing. */
export function isSafeKey (key: string): boolean {
  try {
    assertSafeKey(key)
    return true
  } catch {
    return false
  }
}

/**
 * Validates a listing prefix: `''` (everything) or a safe key, optionally with one
 * trailing `/`. Prefixes match as plain string prefixes, as in S3: `a/b` also matches
 * `a/bc`, so pass `a/b/` to mean "inside a/b".
 */
export function assertSafePrefix (prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string') throw new ValidationError('blob prefix must be a string', { problem: 'not-a-string' })
  if (prefix === '') return
  assertSafeKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, 'blob prefix')
}

/**
 * Orders keys by Unicode code point (the same as UTF-8 byte order, which is what S3
 * returns), so every store lists in the same order. Plain `<` compares UTF-16 code units,
 * which puts astral characters before U+E000..U+FFFF.
 */
export function compareBlobKeys (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}
