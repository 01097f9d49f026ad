import { assertNever } from '../src/lib/assert-never.js'
import type { BlobStoreConfig } from './blob-store-config.js'
import type { BlobStore } from './blob-store.js'
import { CbfsBlobStore } from './cbfs-blob-store.js'
import { FileBlobStore } from './file-blob-store.js'
import { MemoryBlobStore } from './memory-blob-store.js'
import { S3BlobStore } from './s3-blob-store.js'

/** Builds the configured BlobStore; the caller owns it and must `close()` it. */
export function createBlobStore (config: BlobStoreConfig): BlobStore {
  switch (config.kind) {
    case 'file':
      return new FileBlobStore({ dir: config.dir })
    case 's3':
      return new S3BlobStore({
        bucket: config.bucket,
        prefix: config.prefix,
        region: config.region,
        forcePathStyle: config.forcePathStyle,
        ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
        ...(config.accessKeyId === undefined ? {} : { accessKeyId: config.accessKeyId }),
        ...(config.secretAccessKey === undefined ? {} : { secretAccessKey: config.secretAccessKey }),
        ...(config.sessionToken === undefined ? {} : { sessionToken: config.sessionToken })
      })
    case 'cbfs':
      return new CbfsBlobStore({ url: config.url, listing: config.listing })
    case 'memory':
      return new MemoryBlobStore()
    default:
      return assertNever(config, 'unknown blob store kind')
  }
}

export type { BlobBody, BlobEntry, BlobGetOptions, BlobPutOptions, BlobStat, BlobStore } from './blob-store.js'
export { assertSafeKey, assertSafePrefix, compareBlobKeys, isSafeKey, MAX_KEY_BYTES, MAX_SEGMENT_BYTES } from './blob-key.js'
export { blobUri, keyFromBlobUri, isBlobUri } from './blob-uri.js'
export { BlobStoreConfig, blobStoreConfigFromUrl, cbfsHttpBaseUrl } from './blob-store-config.js'
export type { BlobStoreUrlDefaults } from './blob-store-config.js'
export { FileBlobStore } from './file-blob-store.js'
export { S3BlobStore } from './s3-blob-store.js'
export { CbfsBlobStore } from './cbfs-blob-store.js'
export type { CbfsListing, CbfsListingMode } from './cbfs-blob-store.js'
export { MemoryBlobStore } from './memory-blob-store.js'
