import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { CbfsBlobStore } from '../../blobstore/cbfs-blob-store.js'
import { FileBlobStore } from '../../blobstore/file-blob-store.js'
import { MemoryBlobStore } from '../../blobstore/memory-blob-store.js'
import { S3BlobStore } from '../../blobstore/s3-blob-store.js'
import { startCbfsServer } from '../helpers/cbfs-server.js'
import type { CbfsTestServer } from '../helpers/cbfs-server.js'
import { S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, startS3Server } from '../helpers/s3-server.js'
import type { S3TestServer } from '../helpers/s3-server.js'
import { defineBlobStoreConformance } from './blob-store-conformance.js'

const BUCKET = 'et-conformance'

let s3: S3TestServer
let cbfs: CbfsTestServer
let fileRoot: string

beforeAll(async () => {
  [s3, cbfs, fileRoot] = await Promise.all([
    startS3Server([BUCKET]),
    startCbfsServer(),
    mkdtemp(path.join(tmpdir(), 'et-file-store-'))
  ])
})

afterAll(async () => {
  await Promise.all([s3?.close(), cbfs?.close(), fileRoot === undefined ? undefined : rm(fileRoot, { recursive: true, force: true })])
})

/** Every name under the root that is not a blob or a directory of blobs: temp files, stray sidecars. */
async function fileLeftovers (): Promise<string[]> {
  const entries = await readdir(fileRoot, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile() && entry.name.startsWith('.et-part.'))
    .map((entry) => path.join(entry.parentPath, entry.name))
}

defineBlobStoreConformance([
  {
    name: 'memory',
    create: async () => new MemoryBlobStore(),
    storesContentType: true,
    boundedMemory: false
  },
  {
    name: 'file',
    create: async () => new FileBlobStore(path.join(fileRoot, 'store')),
    storesContentType: true,
    boundedMemory: true,
    leftovers: fileLeftovers
  },
  {
    name: 's3 (s3rver)',
    create: async () => new S3BlobStore({
      bucket: BUCKET,
      prefix: 'tenant-data',
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      accessKeyId: S3RVER_ACCESS_KEY_ID,
      secretAccessKey: S3RVER_SECRET_ACCESS_KEY
    }),
    storesContentType: true,
    boundedMemory: true,
    requests: async () => await s3.requests(),
    serverKeepsConcurrentPutsApart: false
  },
  {
    name: 'cbfs (CBFS-compatible server)',
    create: async () => new CbfsBlobStore({ url: cbfs.url.replace(/^http:/, 'cbfs:') }),
    storesContentType: true,
    boundedMemory: true,
    requests: () => cbfs.requests()
  }
])
