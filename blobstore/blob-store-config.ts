import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { ValidationError } from '../src/lib/errors.js'
import { isSafeKey } from './blob-key.js'

/** CBFS's own default port, used when a `cbfs://host/` URL names none. */
export const CBFS_DEFAULT_PORT = 8484

// S3's rules for new buckets: 3-63 of lowercase letters, digits, dots and hyphens.
const BucketName = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)')

const KeyPrefix = z.string()
  .transform((value) => value.replace(/^\/+|\/+$/g, ''))
  .refine((value) => value === '' || isSafeKey(value), 'must be a relative key prefix without ., .. or empty segments')

export const FileBlobStoreConfig = z.object({
  kind: z.literal('file'),
  dir: z.string().min(1)
}).strict()

export const S3BlobStoreConfig = z.object({
  kind: z.literal('s3'),
  bucket: BucketName,
  prefix: KeyPrefix.default(''),
  region: z.string().min(1).default('us-east-1'),
  endpoint: z.url({ protocol: /^https?$/ }).optional(),
  forcePathStyle: z.boolean().default(false),
  accessKeyId: z.string().min(1).optional(),
  secretAccessKey: z.string().min(1).optional(),
  sessionToken: z.string().min(1).optional()
}).strict().refine((c) => (c.accessKeyId === undefined) === (c.secretAccessKey === undefined), {
  message: 'give both accessKeyId and secretAccessKey, or neither (to use the AWS default credential chain)',
  path: ['secretAccessKey']
})

export const CbfsBlobStoreConfig = z.object({
  kind: z.literal('cbfs'),
  url: z.string().refine((value) => tryCbfsUrl(value) !== undefined, 'must be cbfs://host[:port]/ or http(s)://host[:port]/[prefix/]'),
  listing: z.enum(['auto', 'cbfs', 'webdav', 'autoindex']).default('auto')
}).strict()

export const MemoryBlobStoreConfig = z.object({
  kind: z.literal('memory')
}).strict()

/** Which blob store to build; `createBlobStore` switches on `kind`. */
export const BlobStoreConfig = z.discriminatedUnion('kind', [FileBlobStoreConfig, S3BlobStoreConfig, CbfsBlobStoreConfig, MemoryBlobStoreConfig])
export type BlobStoreConfig = z.infer<typeof BlobStoreConfig>

/** Settings a URL cannot carry (credentials) or may leave out (region). */
export interface BlobStoreUrlDefaults {
  region?: string | undefined
  accessKeyId?: string | undefined
  secretAccessKey?: string | undefined
  sessionToken?: string | undefined
}

const S3_PARAMS = new Set(['region', 'endpoint', 'path-style'])

/**
 * Parses `--blob-store-url`:
 * - `file:///abs/dir`
 * - `s3://bucket[/prefix][?region=…&endpoint=http://host:port&path-style=true]`
 *   (path-style defaults to true when an endpoint is given, as S3-compatible servers need it)
 * - `cbfs://host[:port]/` (plain HTTP, port 8484 by default) or `http(s)://host[:port]/[prefix/]`
 * - `memory:` (tests and demos only)
 *
 * Credentials never come from the URL (it gets logged and shown in errors); they come from
 * `defaults`. Throws a one-line ValidationError naming the URL (with any userinfo hidden).
 */
export function blobStoreConfigFromUrl (url: string, defaults: BlobStoreUrlDefaults = {}): BlobStoreConfig {
  const fail = (reason: string): never => {
    throw new ValidationError(`invalid blob store URL ${JSON.stringify(redactUrl(url))}: ${reason}`)
  }
  if (url === 'memory:' || url === 'memory://') return { kind: 'memory' }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return fail('not a URL (expected file:///dir, s3://bucket/prefix, cbfs://host:port/ or http(s)://host:port/)')
  }
  if (parsed.username !== '' || parsed.password !== '') {
    fail('credentials do not belong in the URL; configure them separately')
  }
  // URL parsing silently resolves '.' and '..' segments; a path that needs them is a mistake.
  const rawPath = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').replace(/[?#].*$/, '')
  if (rawPath.split('/').some((segment) => /^(\.|%2e){1,2}$/i.test(segment))) fail("the path has '.' or '..' segments")
  let candidate: unknown
  switch (parsed.protocol) {
    case 'file:': {
      if (!url.startsWith('file://')) fail('use file:///absolute/path')
      if (parsed.host !== '' && parsed.host !== 'localhost') fail('file URLs must not name a host; use file:///absolute/path')
      if (parsed.search !== '' || parsed.hash !== '') fail('file URLs take no query or fragment')
      const dir = fileURLToPath(parsed).replace(/(?<=.)\/+$/, '')
      candidate = { kind: 'file', dir }
      break
    }
    case 's3:': {
      if (parsed.port !== '') fail('an s3:// URL names a bucket, not a host:port; use ?endpoint=http://host:port')
      if (parsed.hash !== '') fail('s3 URLs take no fragment')
      for (const name of parsed.searchParams.keys()) {
        if (!S3_PARAMS.has(name)) fail(`unknown parameter '${name}' (known: ${[...S3_PARAMS].join(', ')})`)
      }
      const endpoint = parsed.searchParams.get('endpoint') ?? undefined
      const pathStyle = parsed.searchParams.get('path-style')
      if (pathStyle !== null && !['true', 'false', '1', '0'].includes(pathStyle)) fail('path-style must be true or false')
      let prefix: string
      try {
        prefix = decodeURIComponent(parsed.pathname)
      } catch {
        return fail('the prefix is not valid percent-encoding')
      }
      candidate = {
        kind: 's3',
        bucket: parsed.hostname,
        prefix,
        region: parsed.searchParams.get('region') ?? defaults.region ?? 'us-east-1',
        ...(endpoint === undefined ? {} : { endpoint }),
        forcePathStyle: pathStyle === null ? endpoint !== undefined : pathStyle === 'true' || pathStyle === '1',
        ...(defaults.accessKeyId === undefined ? {} : { accessKeyId: defaults.accessKeyId }),
        ...(defaults.secretAccessKey === undefined ? {} : { secretAccessKey: defaults.secretAccessKey }),
        ...(defaults.sessionToken === undefined ? {} : { sessionToken: defaults.sessionToken })
      }
      break
    }
    case 'cbfs:':
    case 'http:':
    case 'https:': {
      const base = tryCbfsUrl(url)
      if (base === undefined) fail('expected cbfs://host[:port]/ or http(s)://host[:port]/[prefix/] without query or fragment')
      candidate = { kind: 'cbfs', url: base?.href }
      break
    }
    default:
      fail(`unsupported scheme '${parsed.protocol}' (expected file:, s3:, cbfs:, http: or https:)`)
  }
  const result = BlobStoreConfig.safeParse(candidate)
  if (!result.success) {
    const issue = result.error.issues[0]
    fail(`${issue?.path.join('.') ?? 'value'} ${issue?.message ?? 'is invalid'}`)
  }
  return result.data as BlobStoreConfig
}

/**
 * The HTTP base URL (pathname ending in '/') of a CBFS-compatible store given as
 * `cbfs://host[:port]/...` or `http(s)://...`; ValidationError for anything else.
 */
export function cbfsHttpBaseUrl (url: string): URL {
  const base = tryCbfsUrl(url)
  if (base === undefined) {
    throw new ValidationError(`invalid CBFS URL ${JSON.stringify(redactUrl(url))}: expected cbfs://host[:port]/ or http(s)://host[:port]/[prefix/] without credentials, query or fragment`)
  }
  return base
}

function tryCbfsUrl (url: string): URL | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return undefined
  }
  if (parsed.username !== '' || parsed.password !== '' || parsed.search !== '' || parsed.hash !== '') return undefined
  if (parsed.hostname === '') return undefined
  const pathname = parsed.pathname === '' ? '/' : parsed.pathname.endsWith('/') ? parsed.pathname : `${parsed.pathname}/`
  switch (parsed.protocol) {
    // cbfs: is not a "special" scheme, so its protocol cannot be switched in place.
    case 'cbfs:': return new URL(`http://${parsed.hostname}:${parsed.port === '' ? CBFS_DEFAULT_PORT : parsed.port}${pathname}`)
    case 'http:':
    case 'https:': return new URL(`${parsed.protocol}//${parsed.host}${pathname}`)
    default: return undefined
  }
}

function redactUrl (url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@').slice(0, 200)
}
