import { resolve } from 'node:path'
import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { blobStoreConfigFromUrl } from '../blobstore/blob-store-config.js'
import type { BlobStoreConfig } from '../blobstore/blob-store-config.js'
import { SchedulerConfig } from '../schedulers/scheduler-config.js'

/** One command-line flag: its env-var twin is ET_<NAME> (upper snake case). */
export interface FlagSpec {
  name: string
  type: 'string' | 'boolean'
  help: string
  aliases?: string[]
  multiple?: boolean
}

/** Flags the server and the worker share: how jobs run, logging, metrics. */
export const jobFlags: FlagSpec[] = [
  { name: 'max-attempts', type: 'string', help: 'attempts per job before it fails (default 3)' },
  { name: 'lease-seconds', type: 'string', help: 'a running job\'s lease; renewed while it runs (default 60)' },
  { name: 'allow-private-urls', type: 'boolean', help: 'allow fetching loopback/private/link-local addresses' },
  { name: 'caffe-bin', type: 'string', help: 'Caffe executable for training (default: the builtin engine)' },
  { name: 'gpu', type: 'string', help: 'passed to caffe train --gpu' },
  { name: 'max-upload-mb', type: 'string', help: 'largest datafile upload or download in MiB (default 2048)' },
  { name: 'log-level', type: 'string', help: 'fatal, error, warn, info (default), debug, trace or silent' },
  { name: 'metrics-port', type: 'string', help: 'serve Prometheus GET /metrics on this port, without auth: keep it private (default: off)' },
  { name: 'metrics-host', type: 'string', help: 'address for --metrics-port (default 127.0.0.1)' },
  { name: 'help', type: 'boolean', help: 'show this help' }
]

export const serverFlags: FlagSpec[] = [
  { name: 'port', type: 'string', help: 'HTTP port (default 8080)' },
  { name: 'host', type: 'string', help: 'address to listen on (default 127.0.0.1; 0.0.0.0 for all)' },
  { name: 'data-dir', type: 'string', help: 'where the embedded database, blobs and work dirs live (default ./data)' },
  { name: 'couch-url', type: 'string', aliases: ['sync-gw', 'sync-gw-url'], help: 'CouchDB URL, e.g. http://admin:pw@127.0.0.1:5984/elastic-thought (default: embedded database)' },
  { name: 'db-name', type: 'string', help: 'database name when --couch-url has none (default elastic-thought)' },
  { name: 'blob-store-url', type: 'string', help: 'file:///dir, s3://bucket/prefix?region=…&endpoint=…, cbfs://host:port/ or http(s)://… (default file://<data-dir>/blobs)' },
  { name: 'scheduler', type: 'string', help: 'in-process (default) or nsq' },
  { name: 'workers', type: 'string', help: 'jobs run at once by the in-process scheduler (default 2)' },
  { name: 'nsqd', type: 'string', multiple: true, help: 'nsqd TCP address host:4150 (repeatable)' },
  { name: 'nsqlookupd', type: 'string', multiple: true, help: 'nsqlookupd HTTP address host:4161 (repeatable)' },
  { name: 'topic', type: 'string', help: 'NSQ topic (default elastic-thought)' },
  { name: 'trust-proxy', type: 'string', multiple: true, help: 'addresses or CIDRs of proxies in front (or loopback, linklocal, uniquelocal) whose X-Forwarded-For names the client (repeatable; default: none)' },
  { name: 'public-url', type: 'string', help: 'the URL users reach the API at, e.g. https://et.example.com, for links in webhooks (default: the URL each request came in on)' },
  { name: 'registration', type: 'string', help: 'open (anyone may POST /users, default) or closed (only the admin)' },
  { name: 'admin-user', type: 'string', help: 'admin username; its password comes from ET_ADMIN_PASSWORD' },
  ...jobFlags
]

export const PositiveInt = (what: string, max: number) => z.coerce.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`).min(1, `${what} must be at least 1`).max(max, `${what} must be at most ${max}`)

export const CouchUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s):// URL' })
export const DbName = z.string().regex(/^[a-z][a-z0-9_$()+/-]*$/, 'must be a valid CouchDB database name (lowercase, starting with a letter)').default('elastic-thought')

export const LogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'must be one of fatal, error, warn, info, debug, trace, silent' }).default('info')

/** The schema of jobFlags' values, shared by the server's and the worker's config. */
export const JobFlagValues = {
  'max-attempts': PositiveInt('max-attempts', 100).default(3),
  'lease-seconds': PositiveInt('lease-seconds', 86_400).default(60),
  'allow-private-urls': z.boolean().default(false),
  'caffe-bin': z.string().min(1).optional(),
  gpu: z.string().regex(/^(all|\d+(,\d+)*)$/, 'must be a device id, a list like 0,1, or all').optional(),
  'max-upload-mb': PositiveInt('max-upload-mb', 1024 * 1024).default(2048),
  'log-level': LogLevel,
  'metrics-port': z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be 0–65535').max(65535, 'must be 0–65535').optional(),
  'metrics-host': z.string().min(1).default('127.0.0.1')
}

// Links are built by appending `/training-jobs/<id>`, so only a scheme, host and optional path
// prefix make sense; credentials would leak into every webhook.
const PublicUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s):// URL' })
  // zod runs these even after the URL check failed; that failure is the one to report.
  .refine((u) => { const url = URL.parse(u); return url === null || (url.username === '' && url.password === '') }, 'must not contain credentials')
  .refine((u) => { const url = URL.parse(u); return url === null || (url.search === '' && url.hash === '') }, 'must not have a query or fragment')
  .transform((u) => u.replace(/\/+$/, ''))

// Whose X-Forwarded-For to believe: the client address decides sign-in throttling.
const TrustedProxy = z.string().refine((v) => ['loopback', 'linklocal', 'uniquelocal'].includes(v) || isAddressOrCidr(v), 'must be an IP address, a CIDR like 10.0.0.0/8, or loopback, linklocal or uniquelocal')

function isAddressOrCidr (value: string): boolean {
  const [address = '', bits, extra] = value.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  if (bits === undefined) return true
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)
}

const HostPort = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be host:port')

const RawServerConfig = z.object({
  port: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be 0–65535').max(65535, 'must be 0–65535').default(8080),
  host: z.string().min(1).default('127.0.0.1'),
  'data-dir': z.string().min(1).default('data'),
  'couch-url': CouchUrl.optional(),
  'db-name': DbName,
  'blob-store-url': z.string().min(1).optional(),
  scheduler: z.enum(['in-process', 'nsq'], { error: 'must be in-process or nsq' }).default('in-process'),
  workers: PositiveInt('workers', 256).default(2),
  nsqd: z.array(HostPort).default([]),
  nsqlookupd: z.array(z.string().min(1)).default([]),
  topic: z.string().regex(/^[.a-zA-Z0-9_-]{1,64}$/, 'must be a valid NSQ topic name').default('elastic-thought'),
  'public-url': PublicUrl.optional(),
  'trust-proxy': z.array(TrustedProxy).default([]),
  registration: z.enum(['open', 'closed'], { error: 'must be open or closed' }).default('open'),
  'admin-user': z.string().min(1).optional(),
  'admin-password': z.string().min(8, 'must be at least 8 characters').optional(),
  ...JobFlagValues
}).superRefine((v, ctx) => {
  if (v.scheduler === 'nsq' && v.nsqd.length === 0) ctx.addIssue({ code: 'custom', path: ['nsqd'], message: 'is required with --scheduler nsq (the server publishes jobs to it)' })
  if (v.registration === 'closed' && v['admin-user'] === undefined) ctx.addIssue({ code: 'custom', path: ['admin-user'], message: 'is required with --registration closed (someone must be able to create users)' })
  if (v['admin-user'] !== undefined && v['admin-password'] === undefined) ctx.addIssue({ code: 'custom', path: ['admin-password'], message: 'must be set in ET_ADMIN_PASSWORD when --admin-user is given' })
})

export type DatabaseConfig =
  | { kind: 'embedded', dir: string, dbName: string }
  | { kind: 'couch', url: string, dbName: string }

export interface ServerConfig {
  host: string
  port: number
  dataDir: string
  database: DatabaseConfig
  blobStore: BlobStoreConfig
  scheduler: SchedulerConfig
  registration: 'open' | 'closed'
  admin: { username: string, password: string } | null
  jobs: { maxAttempts: number, leaseMs: number, allowPrivateUrls: boolean, caffeBin: string | null, gpu: string | null, workDir: string }
  maxUploadBytes: number
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Where to serve Prometheus metrics; absent or null: not served. */
  metrics?: { host: string, port: number } | null
  /** The URL users reach the API at, for links in webhooks; absent or null: each request's own. */
  publicUrl?: string | null
  /** Proxies whose X-Forwarded-For names the client; absent or empty: none. */
  trustProxy?: string[]
}

/**
 * The blob store a --blob-store-url names. S3 credentials come from the usual AWS variables,
 * never from the URL (it gets logged).
 */
export function blobStoreFromFlag (url: string, env: NodeJS.ProcessEnv): BlobStoreConfig {
  try {
    return blobStoreConfigFromUrl(url, { region: env.AWS_REGION, accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN })
  } catch (err) {
    throw new ConfigError(`invalid --blob-store-url: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/** A bad flag or value: the message is the one line shown before exiting. */
export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

export type ParsedCommand = { help: true } | { help: false, config: ServerConfig }

/**
 * Parses argv and the environment once at start-up. Flags win over ET_* variables. Throws
 * ConfigError whose message names the flag and the problem in one line.
 */
export function loadServerConfig (argv: string[], env: NodeJS.ProcessEnv): ParsedCommand {
  const raw = readFlags(serverFlags, argv, env)
  if (raw.help === true) return { help: true }
  // The admin password only ever comes from the environment: argv is visible in `ps`.
  if (env.ET_ADMIN_PASSWORD !== undefined) raw['admin-password'] = env.ET_ADMIN_PASSWORD
  delete raw.help
  const parsed = RawServerConfig.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const flag = String(issue?.path[0] ?? '')
    const shown = flag === 'admin-password' ? 'ET_ADMIN_PASSWORD' : `--${flag}`
    throw new ConfigError(`invalid ${shown}: ${issue?.message ?? 'invalid value'}`)
  }
  const v = parsed.data
  const dataDir = resolve(v['data-dir'])
  const database: DatabaseConfig = v['couch-url'] === undefined
    ? { kind: 'embedded', dir: resolve(dataDir, 'db'), dbName: v['db-name'] }
    : { kind: 'couch', url: v['couch-url'], dbName: v['db-name'] }
  const blobStore = blobStoreFromFlag(v['blob-store-url'] ?? `file://${resolve(dataDir, 'blobs')}`, env)
  const scheduler = SchedulerConfig.safeParse(v.scheduler === 'nsq'
    ? { kind: 'nsq', nsqd: v.nsqd, lookupd: v.nsqlookupd, topic: v.topic, concurrency: v.workers, maxAttempts: v['max-attempts'] }
    : { kind: 'in-process', concurrency: v.workers, maxAttempts: v['max-attempts'] })
  if (!scheduler.success) throw new ConfigError(`invalid scheduler settings: ${scheduler.error.issues[0]?.message ?? 'invalid'}`)
  return {
    help: false,
    config: {
      host: v.host,
      port: v.port,
      dataDir,
      database,
      blobStore,
      scheduler: scheduler.data,
      registration: v.registration,
      admin: v['admin-user'] !== undefined && v['admin-password'] !== undefined ? { username: v['admin-user'], password: v['admin-password'] } : null,
      jobs: {
        maxAttempts: v['max-attempts'],
        leaseMs: v['lease-seconds'] * 1000,
        allowPrivateUrls: v['allow-private-urls'],
        caffeBin: v['caffe-bin'] ?? null,
        gpu: v.gpu ?? null,
        workDir: resolve(dataDir, 'work')
      },
      maxUploadBytes: v['max-upload-mb'] * 1024 * 1024,
      logLevel: v['log-level'],
      metrics: v['metrics-port'] === undefined ? null : { host: v['metrics-host'], port: v['metrics-port'] },
      publicUrl: v['public-url'] ?? null,
      trustProxy: v['trust-proxy']
    }
  }
}

/**
 * Reads flags (and their ET_* environment twins) into a plain record keyed by flag name.
 * Unknown flags and stray positional arguments are errors naming them.
 */
export function readFlags (specs: FlagSpec[], argv: string[], env: NodeJS.ProcessEnv): Record<string, unknown> {
  const options: Record<string, { type: 'string' | 'boolean', multiple?: boolean }> = {}
  const canonical = new Map<string, string>()
  for (const spec of specs) {
    for (const name of [spec.name, ...(spec.aliases ?? [])]) {
      options[name] = { type: spec.type, ...(spec.multiple === true ? { multiple: true } : {}) }
      canonical.set(name, spec.name)
    }
  }
  let values: Record<string, unknown>
  let positionals: string[]
  try {
    const parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true })
    values = parsed.values
    positionals = parsed.positionals
  } catch (err) {
    throw new ConfigError(flagErrorLine(err))
  }
  if (positionals.length > 0) throw new ConfigError(`unexpected argument '${positionals[0] ?? ''}' (flags look like --port 8080)`)
  const raw: Record<string, unknown> = {}
  for (const spec of specs) {
    const envValue = env[`ET_${spec.name.toUpperCase().replaceAll('-', '_')}`]
    if (envValue !== undefined && envValue !== '') {
      raw[spec.name] = spec.type === 'boolean' ? parseEnvBool(spec.name, envValue) : spec.multiple === true ? envValue.split(',').map((s) => s.trim()).filter((s) => s !== '') : envValue
    }
  }
  for (const [name, value] of Object.entries(values)) {
    const key = canonical.get(name) ?? name
    const spec = specs.find((s) => s.name === key)
    raw[key] = spec?.multiple === true && Array.isArray(value) ? value.flatMap((s) => String(s).split(',').map((p) => p.trim()).filter((p) => p !== '')) : value
  }
  return raw
}

function parseEnvBool (name: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true
  if (/^(0|false|no|off)$/i.test(value)) return false
  throw new ConfigError(`invalid ET_${name.toUpperCase().replaceAll('-', '_')}: must be true or false`)
}

function flagErrorLine (err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const unknown = /Unknown option '([^']+)'/.exec(message)
  if (unknown !== null) return `unknown flag ${unknown[1] ?? ''} (see --help)`
  const missing = /Option '([^']+?)(?: <value>)?' argument missing/.exec(message)
  if (missing !== null) return `flag ${missing[1] ?? ''} needs a value`
  return message.split('\n')[0] ?? message
}

export function helpText (command: string, specs: FlagSpec[], summary: string): string {
  const example = specs[0] === undefined ? 'ET_LOG_LEVEL' : `ET_${specs[0].name.toUpperCase().replaceAll('-', '_')}`
  const lines = [`Usage: ${command} [flags]`, '', summary, '', `Flags (each also readable from ET_<FLAG_NAME>, e.g. ${example}):`]
  for (const spec of specs) {
    const names = [spec.name, ...(spec.aliases ?? [])].map((n) => `--${n}`).join(', ')
    lines.push(`  ${(names + (spec.type === 'string' ? ' <value>' : '')).padEnd(48)} ${spec.help}`)
  }
  return lines.join('\n') + '\n'
}
