import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { S3BlobStore } from '../../blobstore/s3-blob-store.js'
import type { S3BlobStoreOptions } from '../../blobstore/s3-blob-store.js'
import { NotFoundError, UnavailableError, ValidationError } from '../../src/lib/errors.js'
import { S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, startS3Server } from '../helpers/s3-server.js'
import type { S3TestServer } from '../helpers/s3-server.js'

const BUCKET = 'et-s3-specifics'

describe('S3BlobStore specifics (s3rver)', () => {
  let s3: S3TestServer
  const stores: S3BlobStore[] = []

  beforeAll(async () => { s3 = await startS3Server([BUCKET]) })
  afterAll(async () => {
    await Promise.all(stores.map(async (store) => await store.close()))
    await s3?.close()
  })

  function store (overrides: Partial<S3BlobStoreOptions> = {}): S3BlobStore {
    const created = new S3BlobStore({
      bucket: BUCKET,
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      accessKeyId: S3RVER_ACCESS_KEY_ID,
      secretAccessKey: S3RVER_SECRET_ACCESS_KEY,
      ...overrides
    })
    stores.push(created)
    return created
  }

  it('sends a big stream of unknown length as a multipart upload, and a small one as one PUT', async () => {
    const s = store({ prefix: 'mp' })
    let before = await s3.requests()
    await s.put('small.bin', Readable.from([randomBytes(1000)]))
    expect(await s3.requests() - before).toBe(1)

    const body = randomBytes(11 * 1024 * 1024)
    before = await s3.requests()
    const result = await s.put('big.bin', Readable.from([body.subarray(0, 4e6), body.subarray(4e6)]))
    // CreateMultipartUpload + 3 parts (5 + 5 + 1 MiB) + CompleteMultipartUpload.
    expect(await s3.requests() - before).toBe(5)
    expect(result.size).toBe(body.length)
    expect((await s.stat('big.bin')).size).toBe(body.length)
  })

  it('keeps blobs under the configured prefix and lists them without it', async () => {
    const inner = store({ prefix: '/tenant-a/area/' })
    const outer = store()
    await inner.put('k/1.txt', 'one')
    expect(await outer.exists('tenant-a/area/k/1.txt')).toBe(true)
    expect(await inner.list('k/')).toEqual([{ key: 'k/1.txt', size: 3 }])
    expect((await store({ prefix: 'tenant-b' }).list())).toEqual([])
  })

  it('tells a missing bucket or bad credentials apart from a missing key', async () => {
    // GET, not HEAD: a HEAD 404 has no body, so S3 itself cannot say which one is missing.
    const noBucket = await store({ bucket: 'no-such-bucket' }).get('k').then(() => undefined, (err: unknown) => err)
    expect(noBucket).toBeInstanceOf(Error)
    expect(noBucket).not.toBeInstanceOf(NotFoundError)
    const wrongKey = await store({ accessKeyId: 'NOT-A-KEY', secretAccessKey: 'whatever' }).put('k', 'x').then(() => undefined, (err: unknown) => err)
    expect(wrongKey).toBeInstanceOf(Error)
    expect(wrongKey).not.toBeInstanceOf(NotFoundError)
    expect(String((wrongKey as Error).message)).not.toContain('whatever')
  })

  it('maps an unreachable endpoint to UnavailableError', async () => {
    const down = store({ endpoint: 'http://127.0.0.1:1' })
    await expect(down.stat('k')).rejects.toBeInstanceOf(UnavailableError)
  })

  it('validates its options', () => {
    expect(() => new S3BlobStore({ bucket: BUCKET, region: 'us-east-1', accessKeyId: 'only-half' })).toThrow(ValidationError)
    expect(() => new S3BlobStore({ bucket: BUCKET, region: 'us-east-1', prefix: 'a/../b' })).toThrow(ValidationError)
    expect(() => new S3BlobStore({ bucket: '', region: 'us-east-1' })).toThrow(ValidationError)
  })
})
