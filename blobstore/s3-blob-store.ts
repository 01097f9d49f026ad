import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client
} from '@aws-sdk/client-s3'
import type { S3ClientConfig } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { Readable } from 'node:stream'
import { NotFoundError, UnavailableError, ValidationError } from '../src/lib/errors.js'
import { assertSafeKey, assertSafePrefix, compareBlobKeys, isSafeKey } from './blob-key.js'
import { abortReasonOr, byteRange, countingStream, emptyStream, existsByStat, isWholeRange, sliceStream, withSignal } from './blob-io.js'
import type { ByteRange } from './blob-io.js'
import type { BlobBody, BlobEntry, BlobGetOptions, BlobPutOptions, BlobStat, BlobStore } from './blob-store.js'

const MIN_PART_SIZE = 5 * 1024 * 1024
// DeleteObjects takes at most 1000 keys per request.
const DELETE_BATCH = 1000

/** S3BlobStore settings; credentials are passed to the SDK only, never logged or echoed. */
export interface S3BlobStoreOptions {
  bucket: string
  /** Key prefix inside the bucket, without leading or trailing '/'; '' for the bucket root. */
  prefix?: string
  region: string
  /** For S3-compatible servers (MinIO, Ceph, s3rver): `http(s)://host:port`. */
  endpoint?: string
  /** Path-style addressing (`endpoint/bucket/key`); most S3-compatible servers need it. */
  forcePathStyle?: boolean
  /** Static credentials; without them the SDK's default chain (env, profile, IMDS) applies. */
  accessKeyId?: string
  secretAccessKey?: string
  sessionToken?: string
  /** Multipart part size in bytes (default and minimum 5 MiB). */
  partSize?: number
  /** Parts uploaded concurrently (default 2). Memory use is about (queueSize + 1) × partSize. */
  queueSize?: number
  /** A ready client (custom middleware, tests). The store then leaves closing it to the caller. */
  client?: S3Client
}

/**
 * BlobStore on S3 or an S3-compatible server. Every put goes through lib-storage's Upload,
 * which sends small bodies as one PutObject and anything over `partSize` (including
 * streams of unknown length) as a multipart upload, holding only a few parts in memory.
 * An incomplete multipart upload is invisible, and a failed or aborted one is aborted on
 * the server. Credentials are handed to the SDK only; they never appear in errors or logs.
 */
export class S3BlobStore implements BlobStore {
  readonly #client: S3Client
  readonly #ownsClient: boolean
  readonly #bucket: string
  readonly #prefix: string
  readonly #partSize: number
  readonly #queueSize: number
  #closed: Promise<void> | undefined

  constructor (options: S3BlobStoreOptions) {
    if (options.bucket === '') throw new ValidationError('S3 blob store needs a bucket')
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '')
    if (prefix !== '') assertSafeKey(prefix, 'S3 key prefix')
    this.#bucket = options.bucket
    this.#prefix = prefix === '' ? '' : `${prefix}/`
    this.#partSize = Math.max(options.partSize ?? MIN_PART_SIZE, MIN_PART_SIZE)
    this.#queueSize = Math.max(options.queueSize ?? 2, 1)
    this.#ownsClient = options.client === undefined
    this.#client = options.client ?? new S3Client(clientConfig(options))
  }

  async put (key: string, body: BlobBody, options: BlobPutOptions = {}): Promise<{ size: number }> {
    assertSafeKey(key)
    const { signal } = options
    signal?.throwIfAborted()
    // The abort reaches the upload by destroying the body stream, which makes Upload fail
    // and abort its multipart upload. Upload.abort() is not used: it rejects at once while
    // a PutObject already in flight may still land, which would break "rejected means
    // nothing was stored".
    const counted = countingStream(body, signal)
    const upload = new Upload({
      client: this.#client,
      params: {
        Bucket: this.#bucket,
        Key: this.#prefix + key,
        Body: counted.stream,
        ...(options.contentType === undefined ? {} : { ContentType: options.contentType })
      },
      partSize: this.#partSize,
      queueSize: this.#queueSize,
      leavePartsOnError: false
    })
    try {
      await upload.done()
    } catch (err) {
      throw abortReasonOr(signal, mapS3Error(err, 'put', key))
    }
    return { size: counted.bytes() }
  }

  async get (key: string, options: BlobGetOptions = {}): Promise<Readable> {
    assertSafeKey(key)
    const range = byteRange(options)
    options.signal?.throwIfAborted()
    const command = new GetObjectCommand({
      Bucket: this.#bucket,
      Key: this.#prefix + key,
      ...(isWholeRange(range) ? {} : { Range: `bytes=${range.start}-${range.end ?? ''}` })
    })
    let body: unknown
    let contentRange: string | undefined
    try {
      const output = await this.#client.send(command, options.signal === undefined ? {} : { abortSignal: options.signal })
      body = output.Body
      contentRange = output.ContentRange
    } catch (err) {
      // 416: the range starts at or past the end of an existing object (including an empty one).
      if (httpStatusOf(err) === 416) return emptyStream()
      throw abortReasonOr(options.signal, mapS3Error(err, 'get', key))
    }
    if (!(body instanceof Readable)) throw new Error('S3 GetObject returned no stream body')
    if (isWholeRange(range)) return withSignal(body, options.signal)
    return withSignal(trimToRange(body, range, contentRange, key), options.signal)
  }

  // A HEAD 404 carries no error body, so a missing bucket looks like a missing key here;
  // get and put do tell them apart.
  async stat (key: string): Promise<BlobStat> {
    assertSafeKey(key)
    try {
      const output = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }))
      const size = output.ContentLength ?? 0
      return output.ContentType === undefined ? { size } : { size, contentType: output.ContentType }
    } catch (err) {
      throw mapS3Error(err, 'stat', key)
    }
  }

  async exists (key: string): Promise<boolean> {
    return await existsByStat(async () => await this.stat(key))
  }

  async delete (key: string): Promise<void> {
    assertSafeKey(key)
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }))
    } catch (err) {
      const mapped = mapS3Error(err, 'delete', key)
      if (!(mapped instanceof NotFoundError)) throw mapped
    }
  }

  async list (prefix = ''): Promise<BlobEntry[]> {
    assertSafePrefix(prefix)
    const entries: BlobEntry[] = []
    let token: string | undefined
    do {
      let output
      try {
        output = await this.#client.send(new ListObjectsV2Command({
          Bucket: this.#bucket,
          Prefix: this.#prefix + prefix,
          ...(token === undefined ? {} : { ContinuationToken: token })
        }))
      } catch (err) {
        throw mapS3Error(err, 'list', prefix)
      }
      for (const object of output.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.#prefix)) continue
        const key = object.Key.slice(this.#prefix.length)
        // Objects written by other tools (folder placeholders ending in '/', odd names) are not blobs of ours.
        if (isSafeKey(key)) entries.push({ key, size: object.Size ?? 0 })
      }
      token = output.IsTruncated === true ? output.NextContinuationToken : undefined
    } while (token !== undefined)
    return entries.sort((a, b) => compareBlobKeys(a.key, b.key))
  }

  async deletePrefix (prefix: string): Promise<number> {
    assertSafePrefix(prefix)
    if (prefix === '') throw new ValidationError('refusing to delete with an empty prefix (the whole store)')
    const entries = await this.list(prefix)
    for (let i = 0; i < entries.length; i += DELETE_BATCH) {
      const batch = entries.slice(i, i + DELETE_BATCH)
      let errors
      try {
        const output = await this.#client.send(new DeleteObjectsCommand({
          Bucket: this.#bucket,
          Delete: { Objects: batch.map(({ key }) => ({ Key: this.#prefix + key })), Quiet: true }
        }))
        errors = output.Errors ?? []
      } catch (err) {
        throw mapS3Error(err, 'deletePrefix', prefix)
      }
      const failed = errors.filter((e) => e.Code !== 'NoSuchKey')
      if (failed.length > 0) {
        throw new UnavailableError(`S3 could not delete ${failed.length} object(s) under ${JSON.stringify(prefix)}: ${failed[0]?.Code ?? 'unknown'}`)
      }
    }
    return entries.length
  }

  async close (): Promise<void> {
    this.#closed ??= Promise.resolve().then(() => {
      if (this.#ownsClient) this.#client.destroy()
    })
    return this.#closed
  }
}

function clientConfig (options: S3BlobStoreOptions): S3ClientConfig {
  const hasKey = options.accessKeyId !== undefined && options.accessKeyId !== ''
  const hasSecret = options.secretAccessKey !== undefined && options.secretAccessKey !== ''
  if (hasKey !== hasSecret) throw new ValidationError('S3 credentials need both an access key id and a secret access key')
  return {
    region: options.region,
    forcePathStyle: options.forcePathStyle ?? false,
    ...(options.endpoint === undefined
      ? {}
      : {
          endpoint: options.endpoint,
          // S3-compatible servers often reject the flexible checksums newer SDKs add by default.
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED'
        }),
    ...(hasKey && hasSecret
      ? {
          credentials: {
            accessKeyId: options.accessKeyId ?? '',
            secretAccessKey: options.secretAccessKey ?? '',
            ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken })
          }
        }
      : {})
  }
}

/**
 * Some S3-compatible servers answer a Range with more than was asked (s3rver reads
 * `bytes=0-0` as "everything") or with the whole object; Content-Range says which bytes
 * came, so cut the requested ones out of them.
 */
function trimToRange (body: Readable, range: ByteRange, contentRange: string | undefined, key: string): Readable {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange ?? '')
  const first = match === null ? 0 : Number(match[1])
  const last = match === null ? undefined : Number(match[2])
  if (first === range.start && (range.end === undefined || (last !== undefined && last <= range.end))) return body
  if (first > range.start) {
    body.destroy()
    throw new Error(`S3 answered a range request for ${JSON.stringify(key)} with ${contentRange ?? 'no Content-Range'}`)
  }
  return sliceStream(body, { start: range.start - first, end: range.end === undefined ? undefined : range.end - first })
}

function httpStatusOf (err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const metadata: unknown = Reflect.get(err, '$metadata')
  if (typeof metadata !== 'object' || metadata === null) return undefined
  const status: unknown = Reflect.get(metadata, 'httpStatusCode')
  return typeof status === 'number' ? status : undefined
}

function errorName (err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined
}

/** SDK errors to our taxonomy: missing object → NotFoundError, outage → UnavailableError. */
function mapS3Error (err: unknown, operation: string, key: string): unknown {
  if (err instanceof NotFoundError || err instanceof ValidationError) return err
  const status = httpStatusOf(err)
  const name = errorName(err)
  if (name === 'AbortError') return err
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) {
    return new NotFoundError(`blob ${JSON.stringify(key)} not found`)
  }
  const message = err instanceof Error ? err.message : String(err)
  if ((status === undefined && isNetworkError(err)) || (status !== undefined && (status >= 500 || status === 429))) {
    return new UnavailableError(`S3 ${operation} of ${JSON.stringify(key)} failed: ${message}`, { cause: err })
  }
  if (status === undefined) return err
  return new Error(`S3 ${operation} of ${JSON.stringify(key)} failed (${name ?? 'error'} ${status}): ${message}`, { cause: err })
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

function isNetworkError (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const code: unknown = Reflect.get(err, 'code')
  const name = errorName(err)
  return (typeof code === 'string' && NETWORK_CODES.has(code)) || name === 'TimeoutError' || name === 'RequestTimeout'
}
