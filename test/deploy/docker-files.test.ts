import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { repoRoot } from '../helpers/processes.js'
import { configError, dockerfileEnv, setVariables, shellWords } from './deploy-commands.js'
import type { Role } from './deploy-commands.js'

// Static checks of the images and the compose file that need nothing but Node (no Docker
// engine exists here): the Dockerfiles' stages and instructions, that every COPY source is in
// the build context, the entry point's dispatch and the healthcheck against real processes,
// and the compose commands run through the programs' own flag parsers. test/deploy/
// compose.deploy.test.ts adds the real `docker compose config` (npm run test:deploy).

interface Instruction { keyword: string, args: string }
interface Stage { from: string, name?: string, instructions: Instruction[] }

/** Parses a Dockerfile into stages (continuations joined, comments and parser directives dropped). */
function dockerfileStages (path: string): { args: Instruction[], stages: Stage[] } {
  const lines = readFileSync(path, 'utf8').replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const globalArgs: Instruction[] = []
  const stages: Stage[] = []
  for (const line of lines) {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line)
    if (m?.[1] === undefined) throw new Error(`${path}: cannot parse '${line}'`)
    const instruction = { keyword: m[1].toUpperCase(), args: (m[2] ?? '').trim() }
    if (instruction.keyword === 'FROM') {
      const [from = '', as, name] = instruction.args.split(/\s+/)
      stages.push({ from, ...(as?.toUpperCase() === 'AS' && name !== undefined ? { name } : {}), instructions: [] })
    } else if (stages.length === 0) {
      globalArgs.push(instruction)
    } else {
      stages.at(-1)?.instructions.push(instruction)
    }
  }
  return { args: globalArgs, stages }
}

const find = (stage: Stage | undefined, keyword: string): Instruction[] => (stage?.instructions ?? []).filter((i) => i.keyword === keyword)
const jsonArgs = (i: Instruction | undefined): unknown => JSON.parse(i?.args.replace(/^(--\S+\s+)*(CMD\s+)?/, '') ?? 'null')

/** Whether .dockerignore keeps `path` out of the build context (a pattern on a parent directory counts). */
function ignored (path: string, patterns: string[]): boolean {
  const toRegex = (pattern: string): RegExp => new RegExp('^' + pattern.replace(/^\//, '').replace(/[.+^${}()|[\]]/g, '\\$&').replace(/\*\*\/?/g, '%GLOBSTAR%').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/%GLOBSTAR%/g, '(.*/)?') + '$')
  const parts = path.split('/')
  let excluded = false
  for (const raw of patterns) {
    const negate = raw.startsWith('!')
    const re = toRegex(negate ? raw.slice(1) : raw)
    if (parts.some((_p, i) => re.test(parts.slice(0, i + 1).join('/')))) excluded = !negate
  }
  return excluded
}

const dockerignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
const SECRET_NAME = /PASSWORD|SECRET|TOKEN|ACCESS_KEY|COUCH_URL|CREDENTIAL/i

describe('docker/Dockerfile (server and CPU worker)', () => {
  const file = join(repoRoot, 'docker/Dockerfile')
  const { args, stages } = dockerfileStages(file)
  const [build, runtime] = stages

  it('builds on node:20-bookworm-slim in two stages: npm ci, build, prune dev dependencies; then a runtime stage', () => {
    expect(args).toContainEqual({ keyword: 'ARG', args: 'NODE_IMAGE=node:20-bookworm-slim' })
    // eslint-disable-next-line no-template-curly-in-string -- Dockerfile variables, not JavaScript
    expect(stages.map((s) => [s.from, s.name])).toEqual([['${NODE_IMAGE}', 'build'], ['${NODE_IMAGE}', 'runtime']])
    const runs = find(build, 'RUN').map((r) => r.args).join('\n')
    const order = ['npm ci', 'npm run build', 'npm prune --omit=dev'].map((cmd) => runs.indexOf(cmd))
    expect(order.every((i) => i >= 0), runs).toBe(true)
    expect([...order].sort((a, b) => a - b)).toEqual(order)
    // The package's prepare script is the build; it must not run before the sources are there.
    expect(runs).toMatch(/npm ci --ignore-scripts/)
    expect(find(runtime, 'RUN').some((r) => /apt-get install[^\n]*libopenblas0-pthread/.test(r.args))).toBe(true)
    // The runtime stage takes the built app from the build stage, not from the context.
    expect(find(runtime, 'COPY').filter((c) => c.args.includes('--from=build')).map((c) => shellWords(c.args).at(-1))).toEqual(['./package.json', './node_modules', './dist', './bin'])
  })

  it('runs as a non-root user with a healthcheck, tini and the role-choosing entry point', () => {
    const user = find(runtime, 'USER').at(-1)?.args ?? 'root'
    expect(user).not.toMatch(/^(root|0)(:|$)/)
    expect(find(runtime, 'HEALTHCHECK').at(-1)?.args).toMatch(/CMD \["node", "\/app\/docker\/healthcheck\.mjs"\]$/)
    expect(jsonArgs(find(runtime, 'ENTRYPOINT').at(-1))).toEqual(['/usr/bin/tini', '--', '/usr/local/bin/docker-entrypoint'])
    expect(jsonArgs(find(runtime, 'CMD').at(-1))).toEqual(['server'])
    expect(find(runtime, 'EXPOSE').map((e) => e.args)).toEqual([dockerfileEnv(file).ET_PORT])
  })

  it('bakes in no secrets: no ARG or ENV that names one, no .env or key files in the context', () => {
    for (const i of [...args, ...stages.flatMap((s) => s.instructions)].filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
      expect(i.args, `${i.keyword} ${i.args}`).not.toMatch(SECRET_NAME)
    }
    for (const path of ['.env', 'docker/.env', 'config/prod.env', 'deploy.pem', 'node_modules/x', '.git/config', 'data/db', 'dist/src/server.js']) {
      expect(ignored(path, dockerignore), path).toBe(true)
    }
  })

  it('copies only sources that exist and that .dockerignore leaves in the context', () => {
    const sources = stages.flatMap((s) => find(s, 'COPY')).filter((c) => !c.args.includes('--from=')).flatMap((c) => shellWords(c.args).filter((w) => !w.startsWith('--')).slice(0, -1))
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'bin', 'docker/entrypoint.sh', 'docker/healthcheck.mjs']))
    for (const source of sources) {
      expect(existsSync(join(repoRoot, source)), `${source} exists`).toBe(true)
      expect(ignored(source, dockerignore), `${source} is in the build context`).toBe(false)
    }
    // Every directory tsconfig.build.json compiles, and every script `npm run build` runs, is
    // copied, or the image build fails (or ships without the dashboard).
    const include = (JSON.parse(readFileSync(join(repoRoot, 'tsconfig.build.json'), 'utf8')) as { include: string[] }).include
    expect(sources).toEqual(expect.arrayContaining(include))
    const buildScript = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.build ?? ''
    const scriptFiles = [...buildScript.matchAll(/(?:tsx|node)\s+(\S+\.[cm]?[jt]s)/g)].map((m) => m[1])
    expect(sources).toEqual(expect.arrayContaining(scriptFiles))
    expect(buildScript.split('&&').map((c) => c.trim().split(/\s+/)[0]).every((tool) => tool === 'tsc' || tool === 'tsx' || tool === 'node'), buildScript).toBe(true)
  })

  it('the ignore matcher is real: it keeps what .dockerignore does not name', () => {
    expect(ignored('src/server.ts', dockerignore)).toBe(false)
    expect(ignored('docs/deployment.md', dockerignore)).toBe(true)
    expect(ignored('a/b/node_modules/c', ['**/node_modules'])).toBe(true)
    expect(ignored('src/x.log', ['*.log'])).toBe(false)
    expect(ignored('keep.log', ['*.log', '!keep.log'])).toBe(false)
  })
})

describe('docker/gpu-worker.Dockerfile', () => {
  const file = join(repoRoot, 'docker/gpu-worker.Dockerfile')
  const { args, stages } = dockerfileStages(file)
  const final = stages.at(-1)

  it('builds on a Caffe base image given by CAFFE_IMAGE, with Node and the app from the main image', () => {
    expect(args.map((a) => a.args)).toEqual(expect.arrayContaining([expect.stringMatching(/^CAFFE_IMAGE=\S+/), 'APP_IMAGE=elastic-thought:local']))
    // eslint-disable-next-line no-template-curly-in-string -- Dockerfile variables, not JavaScript
    expect(stages.map((s) => s.from)).toEqual(['${APP_IMAGE}', '${CAFFE_IMAGE}'])
    const fromApp = find(final, 'COPY').filter((c) => c.args.includes('--from=app')).map((c) => shellWords(c.args).filter((w) => !w.startsWith('--'))[0])
    expect(fromApp).toEqual(['/usr/local/bin/node', '/app', '/usr/local/bin/docker-entrypoint'])
    const main = dockerfileStages(join(repoRoot, 'docker/Dockerfile')).stages.at(-1)
    expect(find(main, 'WORKDIR').map((w) => w.args)).toContain('/app')
    expect(find(main, 'COPY').some((c) => c.args.endsWith(' /usr/local/bin/docker-entrypoint'))).toBe(true)
    // The base must run Node 20 and sharp: the build refuses glibc < 2.28 and a missing caffe.
    const runs = find(final, 'RUN').map((r) => r.args).join('\n')
    expect(runs).toContain('2.28')
    expect(runs).toContain('command -v caffe')
  })

  it('runs `worker --caffe-bin caffe --gpu 0` as a non-root user, and the worker accepts it', () => {
    const cmd = jsonArgs(find(final, 'CMD').at(-1)) as string[]
    expect(cmd).toEqual(['worker', '--caffe-bin', 'caffe', '--gpu', '0'])
    expect(find(final, 'USER').at(-1)?.args).toBe('et:et')
    expect(find(final, 'HEALTHCHECK')).toHaveLength(1)
    const env: Record<string, string> = { ...dockerfileEnv(file), ET_COUCH_URL: 'http://admin:pw@10.0.0.1:5984/elastic-thought', ET_BLOB_STORE_URL: 's3://bucket/blobs?region=eu-west-1', ET_NSQLOOKUPD: '10.0.0.1:4161' }
    expect(configError('worker', cmd.slice(1), env)).toBeNull()
    expect(env.ET_CAFFE_BIN).toBe('caffe')
  })
})

describe('docker/entrypoint.sh and docker/healthcheck.mjs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-entrypoint-'))
  const roleFile = join(dir, 'role')
  mkdirSync(join(dir, 'bin'))
  // Stand-ins for the three programs: each prints which one it is and its arguments.
  for (const name of ['elastic-thought', 'elastic-thought-worker', 'et-caffe']) {
    writeFileSync(join(dir, 'bin', `${name}.js`), `process.stdout.write(JSON.stringify([${JSON.stringify(name)}, ...process.argv.slice(2)]))\n`)
  }
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const run = (...args: string[]): { out: unknown, role: string } => {
    rmSync(roleFile, { force: true })
    const result = spawnSync('sh', [join(repoRoot, 'docker/entrypoint.sh'), ...args], { env: { ...process.env, ET_APP_DIR: dir, ET_ROLE_FILE: roleFile }, encoding: 'utf8' })
    expect(result.status, result.stderr).toBe(0)
    return { out: result.stdout.startsWith('[') ? JSON.parse(result.stdout) : result.stdout, role: existsSync(roleFile) ? readFileSync(roleFile, 'utf8').trim() : '' }
  }

  it('picks the program from the first argument', () => {
    expect(run()).toEqual({ out: ['elastic-thought'], role: 'server' })
    expect(run('server', '--port', '9000')).toEqual({ out: ['elastic-thought', '--port', '9000'], role: 'server' })
    expect(run('--port', '9000')).toEqual({ out: ['elastic-thought', '--port', '9000'], role: 'server' })
    expect(run('worker', '--concurrency', '2')).toEqual({ out: ['elastic-thought-worker', '--concurrency', '2'], role: 'worker' })
    expect(run('elastic-thought-worker')).toEqual({ out: ['elastic-thought-worker'], role: 'worker' })
    expect(run('status', '--watch')).toEqual({ out: ['elastic-thought', 'status', '--watch'], role: 'command' })
    expect(run('server', 'publish-metrics', '--once')).toEqual({ out: ['elastic-thought', 'publish-metrics', '--once'], role: 'command' })
    expect(run('et-caffe', 'device_query')).toEqual({ out: ['et-caffe', 'device_query'], role: 'et-caffe' })
    expect(run('echo', 'plain')).toEqual({ out: 'plain\n', role: '' })
  })

  it('the healthcheck passes a server only while GET /health answers 200, and always passes workers and commands', async () => {
    let status = 200
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/health' ? status : 404
      res.end('{}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    try {
      expect(await runProbe(port, roleFile, 'server')).toBe(0)
      status = 503
      expect(await runProbe(port, roleFile, 'server')).toBe(1)
      // No role file yet (the entry point has not run): probed as a server.
      expect(await runProbe(port, roleFile, null)).toBe(1)
      expect(await runProbe(port, roleFile, 'worker')).toBe(0)
      expect(await runProbe(port, roleFile, 'command')).toBe(0)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
    // Nothing listening any more: a server is unhealthy.
    expect(await runProbe(port, roleFile, 'server')).toBe(1)
  })
})

/** Runs the healthcheck as a child, asynchronously: the test's own HTTP server has to answer it. */
async function runProbe (port: number, roleFile: string, role: string | null): Promise<number | null> {
  if (role === null) rmSync(roleFile, { force: true })
  else writeFileSync(roleFile, `${role}\n`)
  const child = spawn(process.execPath, [join(repoRoot, 'docker/healthcheck.mjs')], { env: { ...process.env, ET_ROLE_FILE: roleFile, ET_PORT: String(port) }, stdio: 'ignore' })
  return await new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

/** Minimal compose interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$. */
function interpolate (text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^}]*))?\}/g, (m, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (m === '$$') return '$'
    const value = env[name ?? '']
    if (value !== undefined && value !== '') return value
    if (op === '?') throw new Error(arg)
    return op === '-' ? arg ?? '' : ''
  })
}

describe('docker/docker-compose.yml (static)', () => {
  const text = readFileSync(join(repoRoot, 'docker/docker-compose.yml'), 'utf8')
  const env = { COUCHDB_USER: 'admin', COUCHDB_PASSWORD: 'a1b2c3d4e5f6' }
  type Service = { command?: string[], environment?: Record<string, string | null>, ports?: string[], container_name?: string, image?: string }
  const compose = parse(interpolate(text, env)) as { services: Record<string, Service> }

  it('refuses to interpolate without the CouchDB credentials, naming the variable', () => {
    expect(() => interpolate(text, { COUCHDB_USER: 'admin' })).toThrow(/set COUCHDB_PASSWORD/)
    expect(() => interpolate(text, { COUCHDB_PASSWORD: 'x' })).toThrow(/set COUCHDB_USER/)
  })

  it('starts the server and the workers with flags and variables their parsers accept', () => {
    const imageEnv = dockerfileEnv(join(repoRoot, 'docker/Dockerfile'))
    for (const [name, role] of [['server', 'server'], ['worker', 'worker']] as Array<[string, Role]>) {
      const service = compose.services[name]
      const [first, ...args] = service?.command ?? []
      expect(first).toBe(role)
      expect(configError(role, args, { ...imageEnv, ...setVariables(service?.environment) })).toBeNull()
      // The password travels in ET_COUCH_URL, never on a command line.
      expect(service?.command?.join(' ')).not.toContain(env.COUCHDB_PASSWORD)
      expect(service?.environment?.ET_COUCH_URL).toBe('http://admin:a1b2c3d4e5f6@couchdb:5984/elastic-thought')
    }
  })

  it('publishes only the API, and leaves the worker free to scale', () => {
    const published = Object.entries(compose.services).filter(([, s]) => s.ports !== undefined).map(([name, s]) => [name, s.ports])
    expect(published).toEqual([['server', ['127.0.0.1:8080:8080']]])
    expect(compose.services.worker?.container_name).toBeUndefined()
  })
})
