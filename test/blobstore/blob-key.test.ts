import { describe, expect, it } from 'vitest'
import { assertSafeKey, assertSafePrefix, compareBlobKeys, isSafeKey, MAX_KEY_BYTES } from '../../blobstore/blob-key.js'
import { blobUri, isBlobUri, keyFromBlobUri } from '../../blobstore/blob-uri.js'
import { ValidationError } from '../../src/lib/errors.js'
import { UNSAFE_KEYS } from './blob-store-conformance.js'

function problemOf (fn: () => void): unknown {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError)
    return { message: (err as ValidationError).message, problem: (err as ValidationError).details?.problem }
  }
  throw new Error('expected a ValidationError')
}

describe('assertSafeKey', () => {
  it.each([
    'a',
    'doc-1/training.tar.gz',
    'tenant:0b7c1c2e-8f0e-4e8a-9d55-0a1b2c3d4e5f/snapshots/snapshot_iter_100.caffemodel',
    'dir with space/naïve 文件 🎉.txt',
    'a/b.c/d..e/f.',
    'x'.repeat(200)
  ])('accepts %j', (key) => {
    expect(() => assertSafeKey(key)).not.toThrow()
    expect(isSafeKey(key)).toBe(true)
  })

  it.each(UNSAFE_KEYS)('rejects a key with %s', (_problem, key) => {
    expect(() => assertSafeKey(key)).toThrow(ValidationError)
    expect(isSafeKey(key)).toBe(false)
  })

  it('names the problem in a short message', () => {
    expect(problemOf(() => assertSafeKey('a/../b'))).toEqual({ message: 'blob key "a/../b" has a \'..\' segment', problem: 'dot-segment' })
    expect(problemOf(() => assertSafeKey('/etc/passwd'))).toMatchObject({ problem: 'absolute' })
    expect(problemOf(() => assertSafeKey(''))).toEqual({ message: 'blob key is empty', problem: 'empty' })
    expect(problemOf(() => assertSafeKey('a\u0000b'))).toMatchObject({ message: 'blob key "a\\u0000b" contains a control character', problem: 'control-character' })
    const long = problemOf(() => assertSafeKey('k/'.repeat(500) + 'z')) as { message: string, problem: string }
    expect(long.problem).toBe('too-long')
    expect(long.message).toContain(`the limit is ${MAX_KEY_BYTES}`)
    expect(long.message.length).toBeLessThan(200)
  })

  it('counts bytes, not characters', () => {
    const segment = '文'.repeat(67) // 201 bytes in UTF-8
    expect(() => assertSafeKey(`a/${segment}`)).toThrow(/201-byte segment/)
    expect(() => assertSafeKey(`a/${'文'.repeat(66)}`)).not.toThrow()
  })

  it('rejects non-strings', () => {
    expect(() => assertSafeKey(42)).toThrow(ValidationError)
    expect(() => assertSafeKey(undefined)).toThrow(ValidationError)
  })
})

describe('assertSafePrefix', () => {
  it('accepts the empty prefix, keys and keys with one trailing slash', () => {
    for (const prefix of ['', 'a', 'a/', 'a/b', 'a/b/']) expect(() => assertSafePrefix(prefix)).not.toThrow()
  })

  it('rejects traversal, absolute and doubled slashes', () => {
    for (const prefix of ['../', '/a', 'a//', 'a/../', '.', 'a\\']) expect(() => assertSafePrefix(prefix)).toThrow(ValidationError)
  })
})

describe('compareBlobKeys', () => {
  it('orders by code point like S3, not by UTF-16 unit', () => {
    const keys = ['😀', '\uFF5E', 'é', 'z', 'Z', 'a/b', 'a-b', 'a']
    expect([...keys].sort(compareBlobKeys)).toEqual(['Z', 'a', 'a-b', 'a/b', 'z', 'é', '\uFF5E', '😀'])
    // Plain sort disagrees on astral characters, which is why the comparator exists.
    expect([...keys].sort().slice(-2)).toEqual(['😀', '\uFF5E'])
  })
})

describe('cbfs:// blob URIs', () => {
  it('round-trips keys verbatim, as the original wrote them', () => {
    expect(blobUri('abc123/training.tar.gz')).toBe('cbfs://abc123/training.tar.gz')
    for (const key of ['a', 'dir with space/naïve 文件 🎉.txt', 'odd/100%.bin', 'tenant:doc/a?b#c']) {
      expect(keyFromBlobUri(blobUri(key))).toBe(key)
      expect(isBlobUri(blobUri(key))).toBe(true)
    }
  })

  it('rejects other schemes and unsafe keys', () => {
    expect(() => keyFromBlobUri('file:///etc/passwd')).toThrow(/not a cbfs:\/\/ blob URI/)
    expect(() => keyFromBlobUri('http://host/a')).toThrow(ValidationError)
    expect(() => keyFromBlobUri('CBFS://a/b')).toThrow(ValidationError)
    expect(() => keyFromBlobUri('cbfs:///etc/passwd')).toThrow(/absolute/)
    expect(() => keyFromBlobUri('cbfs://a/../../etc/passwd')).toThrow(/'\.\.' segment/)
    expect(() => keyFromBlobUri('cbfs://')).toThrow(/empty/)
    expect(() => blobUri('../x')).toThrow(ValidationError)
    expect(isBlobUri('s3://bucket/key')).toBe(false)
  })
})
