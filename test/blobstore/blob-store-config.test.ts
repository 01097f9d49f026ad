import { describe, expect, it } from 'vitest'
import { BlobStoreConfig, blobStoreConfigFromUrl, cbfsHttpBaseUrl } from '../../blobstore/blob-store-config.js'
import { CbfsBlobStore } from '../../blobstore/cbfs-blob-store.js'
import { FileBlobStore } from '../../blobstore/file-blob-store.js'
import { createBlobStore } from '../../blobstore/index.js'
import { MemoryBlobStore } from '../../blobstore/memory-blob-store.js'
import { S3BlobStore } from '../../blobstore/s3-blob-store.js'
import { ValidationError } from '../../src/lib/errors.js'

describe('blobStoreConfigFromUrl', () => {
  it('parses file:///dir', () => {
    expect(blobStoreConfigFromUrl('file:///var/lib/et/blobs/')).toEqual({ kind: 'file', dir: '/var/lib/et/blobs' })
    expect(blobStoreConfigFromUrl('file:///tmp')).toEqual({ kind: 'file', dir: '/tmp' })
    expect(blobStoreConfigFromUrl('file:///')).toEqual({ kind: 'file', dir: '/' })
    expect(blobStoreConfigFromUrl('file:///data/with%20space')).toEqual({ kind: 'file', dir: '/data/with space' })
  })

  it('parses s3://bucket/prefix with its options, taking credentials from defaults', () => {
    expect(blobStoreConfigFromUrl('s3://et-blobs/prod/v1?region=eu-west-1')).toEqual({
      kind: 's3', bucket: 'et-blobs', prefix: 'prod/v1', region: 'eu-west-1', forcePathStyle: false
    })
    expect(blobStoreConfigFromUrl('s3://et-blobs?endpoint=http://127.0.0.1:9000', { region: 'us-west-2', accessKeyId: 'AK', secretAccessKey: 'SK' })).toEqual({
      kind: 's3',
      bucket: 'et-blobs',
      prefix: '',
      region: 'us-west-2',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      accessKeyId: 'AK',
      secretAccessKey: 'SK'
    })
    expect(blobStoreConfigFromUrl('s3://et-blobs/p/?endpoint=https://s3.example.com&path-style=false')).toMatchObject({ prefix: 'p', forcePathStyle: false })
    expect(blobStoreConfigFromUrl('s3://et-blobs/p?path-style=true')).toMatchObject({ forcePathStyle: true, region: 'us-east-1' })
  })

  it('parses cbfs:// and http(s):// as CBFS-compatible stores', () => {
    expect(blobStoreConfigFromUrl('cbfs://cbfs.local:8484/')).toEqual({ kind: 'cbfs', url: 'http://cbfs.local:8484/', listing: 'auto' })
    expect(blobStoreConfigFromUrl('cbfs://cbfs.local')).toEqual({ kind: 'cbfs', url: 'http://cbfs.local:8484/', listing: 'auto' })
    expect(blobStoreConfigFromUrl('http://127.0.0.1:8080/blobs')).toEqual({ kind: 'cbfs', url: 'http://127.0.0.1:8080/blobs/', listing: 'auto' })
    expect(blobStoreConfigFromUrl('https://dav.example.com/et/')).toEqual({ kind: 'cbfs', url: 'https://dav.example.com/et/', listing: 'auto' })
  })

  it('parses memory:', () => {
    expect(blobStoreConfigFromUrl('memory:')).toEqual({ kind: 'memory' })
  })

  it.each([
    ['not a url', /not a URL/],
    ['ftp://host/x', /unsupported scheme 'ftp:'/],
    ['file:relative/dir', /file:\/\/\/absolute/],
    ['file://otherhost/dir', /must not name a host/],
    ['file:///dir?x=1', /no query/],
    ['s3://Bad_Bucket/x', /bucket .*valid S3 bucket name/],
    ['s3://bucket/../x', /'\.' or '\.\.' segments/],
    ['file:///data/%2e%2e/etc', /'\.' or '\.\.' segments/],
    ['s3://bucket/a%2F..%2Fx', /prefix/],
    ['s3://bucket/x?regoin=eu-west-1', /unknown parameter 'regoin'/],
    ['s3://bucket:9000/x', /not a host:port/],
    ['s3://bucket/x?path-style=maybe', /path-style must be true or false/],
    ['s3://bucket/x?endpoint=ftp://h', /endpoint/],
    ['cbfs://host:8484/?q=1', /expected cbfs:\/\//],
    ['http://user:secret@host/', /credentials do not belong/]
  ])('rejects %s with a one-line error naming it', (url, reason) => {
    let err: unknown
    try {
      blobStoreConfigFromUrl(url)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ValidationError)
    const message = (err as Error).message
    expect(message).toMatch(reason)
    expect(message).not.toContain('\n')
    expect(message).toContain('invalid blob store URL')
    expect(message).not.toContain('secret')
  })
})

describe('BlobStoreConfig', () => {
  it('applies S3 defaults and insists on both credential halves', () => {
    expect(BlobStoreConfig.parse({ kind: 's3', bucket: 'abc' })).toEqual({ kind: 's3', bucket: 'abc', prefix: '', region: 'us-east-1', forcePathStyle: false })
    const half = BlobStoreConfig.safeParse({ kind: 's3', bucket: 'abc', accessKeyId: 'AK' })
    expect(half.success).toBe(false)
    expect(half.error?.issues[0]?.path).toEqual(['secretAccessKey'])
    expect(BlobStoreConfig.safeParse({ kind: 'nope' }).success).toBe(false)
    expect(BlobStoreConfig.safeParse({ kind: 'file', dir: '/x', extra: 1 }).success).toBe(false)
    expect(BlobStoreConfig.safeParse({ kind: 'cbfs', url: 'ftp://x/' }).success).toBe(false)
  })
})

describe('createBlobStore', () => {
  it('builds the implementation named by kind', async () => {
    const stores = [
      createBlobStore({ kind: 'file', dir: '/tmp/et-never-written' }),
      createBlobStore(BlobStoreConfig.parse({ kind: 's3', bucket: 'abc', endpoint: 'http://127.0.0.1:1' })),
      createBlobStore({ kind: 'cbfs', url: 'cbfs://127.0.0.1:1/', listing: 'auto' }),
      createBlobStore({ kind: 'memory' })
    ]
    expect(stores[0]).toBeInstanceOf(FileBlobStore)
    expect(stores[1]).toBeInstanceOf(S3BlobStore)
    expect(stores[2]).toBeInstanceOf(CbfsBlobStore)
    expect(stores[3]).toBeInstanceOf(MemoryBlobStore)
    await Promise.all(stores.map(async (store) => await store.close()))
  })
})

describe('cbfsHttpBaseUrl', () => {
  it('maps cbfs:// to http and always ends in a slash', () => {
    expect(cbfsHttpBaseUrl('cbfs://h:1234').href).toBe('http://h:1234/')
    expect(cbfsHttpBaseUrl('https://h/a/b').href).toBe('https://h/a/b/')
    expect(() => cbfsHttpBaseUrl('s3://bucket/')).toThrow(ValidationError)
  })
})
