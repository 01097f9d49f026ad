import { describe, expect, it } from 'vitest'
import { ConfigError, helpText, loadServerConfig, serverFlags } from '../src/config.js'

const load = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const parsed = loadServerConfig(argv, env)
  if (parsed.help) throw new Error('unexpected help')
  return parsed.config
}

const failure = (argv: string[], env: NodeJS.ProcessEnv = {}): string => {
  try {
    loadServerConfig(argv, env)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as Error).message
  }
  throw new Error('expected a ConfigError')
}

describe('server config', () => {
  it('defaults to the embedded database, file blobs under the data dir and the in-process scheduler on 127.0.0.1:8080', () => {
    const config = load([])
    expect(config.port).toBe(8080)
    expect(config.host).toBe('127.0.0.1')
    expect(config.database).toMatchObject({ kind: 'embedded', dbName: 'elastic-thought' })
    expect(config.blobStore).toMatchObject({ kind: 'file' })
    expect(config.blobStore.kind === 'file' && config.blobStore.dir).toBe(`${config.dataDir}/blobs`)
    expect(config.scheduler).toMatchObject({ kind: 'in-process', concurrency: 2 })
    expect(config.registration).toBe('open')
  })

  it('takes the original flag names for the database URL', () => {
    for (const flag of ['--couch-url', '--sync-gw', '--sync-gw-url']) {
      const config = load([flag, 'http://sync-gateway:4984/elastic-thought'])
      expect(config.database).toEqual({ kind: 'couch', url: 'http://sync-gateway:4984/elastic-thought', dbName: 'elastic-thought' })
    }
    expect(load(['--sync-gw=http://127.0.0.1:5984/db']).database).toMatchObject({ kind: 'couch', url: 'http://127.0.0.1:5984/db' })
  })

  it('reads ET_* environment variables, and flags win over them', () => {
    expect(load([], { ET_PORT: '9000', ET_LOG_LEVEL: 'debug' })).toMatchObject({ port: 9000, logLevel: 'debug' })
    expect(load(['--port', '9100'], { ET_PORT: '9000' }).port).toBe(9100)
    expect(load([], { ET_ALLOW_PRIVATE_URLS: 'true' }).jobs.allowPrivateUrls).toBe(true)
    expect(load(['--scheduler', 'nsq', '--nsqd', 'a:4150,b:4150']).scheduler).toMatchObject({ kind: 'nsq', nsqd: ['a:4150', 'b:4150'] })
  })

  it('stops with one line naming the flag for every bad value', () => {
    expect(failure(['--port', 'eighty'])).toBe('invalid --port: must be a number')
    expect(failure(['--port', '70000'])).toBe('invalid --port: must be 0–65535')
    expect(failure(['--colour'])).toBe('unknown flag --colour (see --help)')
    expect(failure(['--port'])).toBe('flag --port needs a value')
    expect(failure(['stray'])).toMatch(/^unexpected argument 'stray'/)
    expect(failure(['--scheduler', 'kafka'])).toBe('invalid --scheduler: must be in-process or nsq')
    expect(failure(['--scheduler', 'nsq'])).toMatch(/^invalid --nsqd: is required with --scheduler nsq/)
    expect(failure(['--couch-url', 'ftp://x'])).toBe('invalid --couch-url: must be an http(s):// URL')
    expect(failure(['--blob-store-url', 'gopher://x'])).toMatch(/^invalid --blob-store-url: /)
    expect(failure(['--registration', 'closed'])).toMatch(/^invalid --admin-user: is required with --registration closed/)
    expect(failure(['--admin-user', 'root'])).toMatch(/^invalid ET_ADMIN_PASSWORD: must be set/)
    expect(failure([], { ET_WORKERS: '0' })).toBe('invalid --workers: workers must be at least 1')
    expect(failure([], { ET_ALLOW_PRIVATE_URLS: 'maybe' })).toBe('invalid ET_ALLOW_PRIVATE_URLS: must be true or false')
    for (const message of [failure(['--port', 'x']), failure(['--nope'])]) expect(message).not.toContain('\n')
  })

  it('takes a public URL for links, without a trailing slash, credentials, query or fragment', () => {
    expect(load([]).publicUrl).toBeNull()
    expect(load(['--public-url', 'https://et.example.com/']).publicUrl).toBe('https://et.example.com')
    expect(load([], { ET_PUBLIC_URL: 'https://example.com/et//' }).publicUrl).toBe('https://example.com/et')
    expect(failure(['--public-url', 'et.example.com'])).toBe('invalid --public-url: must be an http(s):// URL')
    expect(failure(['--public-url', 'https://u:p@et.example.com'])).toBe('invalid --public-url: must not contain credentials')
    expect(failure(['--public-url', 'https://et.example.com/?a=1'])).toBe('invalid --public-url: must not have a query or fragment')
  })

  it('takes the proxies to trust for the client address, and refuses anything that is not an address, a CIDR or a preset', () => {
    expect(load([]).trustProxy).toEqual([])
    expect(load(['--trust-proxy', '10.0.0.0/8', '--trust-proxy', 'loopback,::1']).trustProxy).toEqual(['10.0.0.0/8', 'loopback', '::1'])
    expect(load([], { ET_TRUST_PROXY: '192.168.1.10, fd00::/8' }).trustProxy).toEqual(['192.168.1.10', 'fd00::/8'])
    for (const bad of ['everyone', '10.0.0.0/33', '10.0.0/8', '1.2.3.4/8/1', 'true']) {
      expect(failure(['--trust-proxy', bad]), bad).toMatch(/^invalid --trust-proxy: must be an IP address, a CIDR/)
    }
  })

  it('takes the admin password only from the environment', () => {
    expect(failure(['--admin-password', 'secret123'])).toBe('unknown flag --admin-password (see --help)')
    const config = load(['--registration', 'closed', '--admin-user', 'root'], { ET_ADMIN_PASSWORD: 'long secret' })
    expect(config.admin).toEqual({ username: 'root', password: 'long secret' })
  })

  it('--help lists every flag with its environment twin', () => {
    expect(loadServerConfig(['--help'], {})).toEqual({ help: true })
    const text = helpText('elastic-thought', serverFlags, 'summary')
    for (const flag of serverFlags) expect(text).toContain(`--${flag.name}`)
    expect(text).toContain('--sync-gw')
    expect(text).toContain('ET_PORT')
  })
})
