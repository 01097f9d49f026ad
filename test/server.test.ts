import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { spawnTs } from './helpers/processes.js'
import type { Spawned } from './helpers/processes.js'

const listening = /"msg":"elastic-thought listening"/

async function start (dataDir: string, extra: string[] = []): Promise<{ server: Spawned, url: string }> {
  const server = spawnTs('src/server.ts', ['--port', '0', '--data-dir', dataDir, ...extra])
  const line = await server.waitForLine(listening)
  const address: unknown = JSON.parse(line).address
  return { server, url: String(address) }
}

describe('the elastic-thought server process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-server-'))
  afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

  it('starts with the embedded defaults, keeps data across a restart, and stops cleanly on SIGTERM', async () => {
    let { server, url } = await start(dir)
    const health = await fetch(`${url}/health`)
    expect(health.status).toBe(200)
    const created = await fetch(`${url}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'jane', email: 'jane@example.com', password: 'persistent pw' }) })
    expect(created.status).toBe(201)
    server.child.kill('SIGTERM')
    expect(await server.exited).toEqual({ code: 0, signal: null })
    expect(server.stdout()).toContain('"msg":"stopped"')

    ;({ server, url } = await start(dir))
    const me = await fetch(`${url}/users/me`, { headers: { authorization: `Basic ${Buffer.from('jane:persistent pw').toString('base64')}` } })
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ username: 'jane' })
    const docs = await fetch(`${url}/documentation/json`)
    const openapi = await docs.json() as { paths: Record<string, unknown> }
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/users', '/datafiles', '/training-jobs/{id}/cancel', '/classifiers/{id}/classify']))
    server.child.kill('SIGTERM')
    expect((await server.exited).code).toBe(0)
    // Neither the password nor its base64 form ever reached the log.
    expect(server.stdout() + server.stderr()).not.toContain('persistent pw')
  })

  it('refuses a bad flag with one line naming it and exit code 2', async () => {
    const server = spawnTs('src/server.ts', ['--port', 'eighty'])
    expect((await server.exited).code).toBe(2)
    expect(server.stderr().trim()).toBe('elastic-thought: invalid --port: must be a number')
  })
})
