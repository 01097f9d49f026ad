import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { repoRoot } from '../helpers/processes.js'
import { configError, dockerfileEnv, setVariables } from './deploy-commands.js'
import type { Role } from './deploy-commands.js'

// `npm run test:deploy`: validates docker/docker-compose.yml with the real Compose — the v2
// plugin (`docker compose`) and/or Debian's docker-compose 1.29 (`apt-get install -y
// docker-compose`), whichever exist; at least one must. `config` needs no Docker engine.

const COMPOSE_FILE = join(repoRoot, 'docker/docker-compose.yml')
const works = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0
const tools: Array<{ name: string, cmd: string, pre: string[] }> = [
  ...(works('docker', ['compose', 'version']) ? [{ name: 'docker compose (v2)', cmd: 'docker', pre: ['compose'] }] : []),
  ...(works('docker-compose', ['version']) ? [{ name: 'docker-compose (v1)', cmd: 'docker-compose', pre: [] }] : [])
]

// An empty --env-file, so a stray docker/.env cannot supply the credentials behind the test's back.
const dir = mkdtempSync(join(tmpdir(), 'et-compose-'))
const emptyEnvFile = join(dir, 'empty.env')
writeFileSync(emptyEnvFile, '')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const baseEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env }
  for (const name of Object.keys(env)) if (name.startsWith('COUCHDB_') || name.startsWith('ET_')) delete env[name]
  return env
}

interface Port { hostIp: string, published: string, target: string }
interface Service {
  command?: string[]
  environment?: Record<string, string | null>
  ports?: unknown[]
  volumes?: unknown[]
  depends_on?: Record<string, { condition?: string }>
  healthcheck?: { test?: unknown }
  container_name?: string
}

/** v1 prints ports as "ip:host:container/proto", v2 as objects; both become {hostIp, published, target}. */
function ports (service: Service | undefined): Port[] {
  return (service?.ports ?? []).map((p) => {
    if (typeof p === 'string') {
      const [hostIp = '', published = '', target = ''] = p.replace(/\/tcp$/, '').split(':')
      return { hostIp, published, target }
    }
    const o = p as { host_ip?: string, published?: string | number, target?: number }
    return { hostIp: o.host_ip ?? '', published: String(o.published ?? ''), target: String(o.target ?? '') }
  })
}

/** Named-volume mounts as "volume:/path" in either version's output. */
function volumeMounts (service: Service | undefined): string[] {
  return (service?.volumes ?? []).map((v) => {
    if (typeof v === 'string') return v.replace(/:rw$/, '')
    const o = v as { type?: string, source?: string, target?: string }
    return `${o.source ?? ''}:${o.target ?? ''}`
  })
}

describe('docker/docker-compose.yml with the real Compose', () => {
  it('a Compose client is installed (docker compose, or apt-get install -y docker-compose)', () => {
    expect(tools.map((t) => t.name)).not.toEqual([])
  })

  describe.each(tools)('$name', ({ cmd, pre }) => {
    const config = (env: Record<string, string>): { status: number | null, stdout: string, stderr: string } => {
      const result = spawnSync(cmd, [...pre, '--env-file', emptyEnvFile, '-f', COMPOSE_FILE, 'config'], { env: { ...baseEnv(), ...env }, encoding: 'utf8', timeout: 60_000 })
      return { status: result.status, stdout: result.stdout, stderr: result.stderr }
    }
    const credentials = { COUCHDB_USER: 'etadmin', COUCHDB_PASSWORD: '9f8e7d6c5b4a' }

    it('fails with a clear message when the CouchDB credentials are not set', () => {
      const none = config({})
      expect(none.status).not.toBe(0)
      expect(none.stderr).toMatch(/set COUCHDB_(USER|PASSWORD)/)
      const noPassword = config({ COUCHDB_USER: 'etadmin' })
      expect(noPassword.status).not.toBe(0)
      expect(noPassword.stderr).toContain('set COUCHDB_PASSWORD to a long URL-safe random string')
      const noUser = config({ COUCHDB_PASSWORD: 'x' })
      expect(noUser.status).not.toBe(0)
      expect(noUser.stderr).toContain('set COUCHDB_USER (the CouchDB admin name)')
    })

    it('normalises with the credentials set: five services, only the API published on loopback, scalable workers', () => {
      const result = config(credentials)
      expect(result.stderr).not.toMatch(/error|invalid/i)
      expect(result.status).toBe(0)
      const { services, volumes } = parse(result.stdout) as { services: Record<string, Service>, volumes: Record<string, unknown> }
      expect(Object.keys(services).sort()).toEqual(['couchdb', 'nsqd', 'nsqlookupd', 'server', 'worker'])
      expect(Object.entries(services).filter(([, s]) => ports(s).length > 0).map(([name]) => name)).toEqual(['server'])
      expect(ports(services.server)).toEqual([{ hostIp: '127.0.0.1', published: '8080', target: '8080' }])
      // What breaks --scale worker=N: a fixed container name or a published port.
      expect(services.worker?.container_name).toBeUndefined()
      expect(services.worker?.ports).toBeUndefined()

      expect(services.server?.command).toEqual(['server', '--scheduler', 'nsq', '--nsqd', 'nsqd:4150', '--blob-store-url', 'file:///var/lib/elastic-thought/blobs'])
      expect(services.worker?.command).toEqual(['worker', '--nsqlookupd', 'nsqlookupd:4161', '--blob-store-url', 'file:///var/lib/elastic-thought/blobs'])
      for (const name of ['server', 'worker']) {
        expect(services[name]?.environment?.ET_COUCH_URL).toBe('http://etadmin:9f8e7d6c5b4a@couchdb:5984/elastic-thought')
        expect(volumeMounts(services[name])).toContain('blobs:/var/lib/elastic-thought/blobs')
      }
      expect(services.couchdb?.environment).toMatchObject(credentials)
      expect(Object.keys(volumes).sort()).toEqual(['blobs', 'couchdb-data', 'nsqd-data'])

      // Start order: the server after CouchDB and nsqd are healthy, workers after the server.
      expect(services.server?.depends_on).toMatchObject({ couchdb: { condition: 'service_healthy' }, nsqd: { condition: 'service_healthy' } })
      expect(services.worker?.depends_on).toMatchObject({ server: { condition: 'service_healthy' }, nsqd: { condition: 'service_healthy' } })
      expect(services.nsqd?.depends_on).toMatchObject({ nsqlookupd: { condition: 'service_healthy' } })
      for (const name of ['couchdb', 'nsqlookupd', 'nsqd']) expect(services[name]?.healthcheck?.test, name).toEqual(expect.arrayContaining(['CMD']))
    })

    it('the normalised commands are accepted by the server and the worker themselves', () => {
      const { services } = parse(config(credentials).stdout) as { services: Record<string, Service> }
      const imageEnv = dockerfileEnv(join(repoRoot, 'docker/Dockerfile'))
      for (const role of ['server', 'worker'] as Role[]) {
        const [, ...args] = services[role]?.command ?? []
        expect(configError(role, args, { ...imageEnv, ...setVariables(services[role]?.environment) }), role).toBeNull()
      }
    })

    it('passes ET_REGISTRATION, ET_ADMIN_USER and ET_ADMIN_PASSWORD from the shell to the server, and only when set', () => {
      const open = parse(config(credentials).stdout) as { services: Record<string, Service> }
      const openEnv = setVariables(open.services.server?.environment)
      expect(Object.keys(openEnv).filter((k) => /REGISTRATION|ADMIN/.test(k))).toEqual([])
      const closed = parse(config({ ...credentials, ET_REGISTRATION: 'closed', ET_ADMIN_USER: 'root', ET_ADMIN_PASSWORD: 'long enough secret' }).stdout) as { services: Record<string, Service> }
      const server = closed.services.server
      const env = setVariables(server?.environment)
      expect(env).toMatchObject({ ET_REGISTRATION: 'closed', ET_ADMIN_USER: 'root', ET_ADMIN_PASSWORD: 'long enough secret' })
      const [, ...args] = server?.command ?? []
      expect(configError('server', args, { ...dockerfileEnv(join(repoRoot, 'docker/Dockerfile')), ...env })).toBeNull()
      expect(configError('server', args, { ...env, ET_ADMIN_PASSWORD: 'short' })).toMatch(/ET_ADMIN_PASSWORD/)
    })

    it('ET_API_BIND and ET_API_PORT move the published port', () => {
      const result = config({ ...credentials, ET_API_BIND: '0.0.0.0', ET_API_PORT: '9090' })
      expect(result.status).toBe(0)
      const { services } = parse(result.stdout) as { services: Record<string, Service> }
      expect(ports(services.server)).toEqual([{ hostIp: '0.0.0.0', published: '9090', target: '8080' }])
    })
  })
})
