import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startEt } from './run-et.js'

const MiB = 1024 * 1024

/** Largest resident set of a process while `until` is pending, read from /proc every 20 ms. */
async function peakRss (pid: number, until: Promise<unknown>): Promise<number> {
  let peak = 0
  const state = { done: false }
  until.finally(() => { state.done = true }).catch(() => {})
  while (!state.done) {
    try {
      const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
      if (kb !== undefined) peak = Math.max(peak, Number(kb) * 1024)
    } catch {
      // The process has just exited.
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return peak
}

/**
 * The folder upload streams: a 64 MiB folder of incompressible images goes out chunked (no
 * Content-Length, so it was not measured by building it first) and et's memory grows by much
 * less than the archive. The receiver here is a bare HTTP sink, not the API: what is under test
 * is how et sends.
 */
describe('et datafile upload of a folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-stream-'))
  let requests: Array<{ method: string, url: string, headers: IncomingHttpHeaders, bytes: number }> = []
  const sink = createServer((req, res) => {
    let bytes = 0
    req.on('data', (chunk: Buffer) => { bytes += chunk.length })
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes })
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(req.method === 'POST' ? { id: 'sunk' } : { username: 'streamer' }))
    })
  })
  let url = ''

  beforeAll(async () => {
    for (const label of ['a', 'b']) {
      mkdirSync(join(dir, 'images', label), { recursive: true })
      for (let i = 0; i < 16; i++) writeFileSync(join(dir, 'images', label, `${i}.png`), randomBytes(2 * MiB))
    }
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await new Promise((resolve) => sink.close(resolve))
    rmSync(dir, { recursive: true, force: true })
  })

  it('sends the archive chunked while packing it, without holding it in memory', async () => {
    const env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'xdg'), ET_URL: url, ET_USERNAME: 'streamer', ET_PASSWORD: 'whatever it is' }
    // A baseline: the same process doing a request but no upload.
    requests = []
    const idle = startEt(['webhook-secret', '--json'], env)
    const idlePeak = await peakRss(idle.child.pid ?? 0, idle.done)

    requests = []
    const et = startEt(['datafile', 'upload', join(dir, 'images')], env)
    const uploadPeak = await peakRss(et.child.pid ?? 0, et.done)
    const result = await et.done
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toBe('sunk\n')
    const upload = requests.find((r) => r.method === 'POST')
    expect(upload?.url).toBe('/datafiles')
    expect(upload?.headers['content-length']).toBeUndefined()
    expect(upload?.headers['transfer-encoding']).toBe('chunked')
    expect(upload?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/)
    // Random bytes do not compress: the body carries the whole 64 MiB.
    expect(upload?.bytes).toBeGreaterThan(64 * MiB)
    expect(uploadPeak - idlePeak, `peak RSS ${Math.round(uploadPeak / MiB)} MiB vs ${Math.round(idlePeak / MiB)} MiB idle`).toBeLessThan(32 * MiB)
  }, 60_000)
})
