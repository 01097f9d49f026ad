import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import sharp from 'sharp'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { buildWeb } from '../../scripts/build-web.js'
import { buildApp } from '../../src/app.js'
import type { AppOptions } from '../../src/app.js'
import { loadServerConfig } from '../../src/config.js'
import { createDeps } from '../../src/deps.js'
import type { Deps } from '../../src/deps.js'
import { createLogger } from '../../src/lib/logger.js'
import type { TenantId } from '../../models/common.js'
import { NewDatafile } from '../../models/datafile.js'

/**
 * The dashboard end to end in Debian's Chromium (headless, through playwright-core): a real
 * server with the in-process scheduler and the builtin engine, and the quadrants example
 * taken from upload to classified images. Screenshots go to test-artifacts/browser/.
 * ET_CHROMIUM overrides the browser path; ET_DOCS_SCREENSHOT=1 also rewrites
 * docs/images/training-page.png.
 */
const repo = path.resolve(import.meta.dirname, '../..')
const example = path.join(repo, 'docs/examples/quadrants')
const artifacts = path.join(repo, 'test-artifacts/browser')
const executablePath = process.env.ET_CHROMIUM ?? '/usr/bin/chromium'
const user = { username: 'dana', password: 'correct horse battery' }

describe('web dashboard in Chromium', () => {
  let work: string
  let deps: Deps
  let app: FastifyInstance
  let base: string
  let appOptions: AppOptions
  let browser: Browser
  let context: BrowserContext
  let page: Page
  const problems: string[] = []
  let shots = 0

  const shot = async (name: string, target: Page = page): Promise<string> => {
    shots += 1
    const file = path.join(artifacts, `${String(shots).padStart(2, '0')}-${name}.png`)
    await target.screenshot({ path: file, fullPage: true })
    return file
  }

  const watchProblems = (p: Page): void => {
    // CSP violations and script errors show up here; the dashboard must cause none.
    p.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`) })
    p.on('pageerror', (err) => { problems.push(`page error: ${err.message}`) })
  }

  const api = async (method: string, url: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return await res.json() as Record<string, unknown>
  }

  const signIn = async (p: Page, password = user.password): Promise<void> => {
    await p.getByLabel('Username').fill(user.username)
    await p.getByLabel('Password').fill(password)
    await p.getByRole('button', { name: 'Sign in' }).click()
  }

  beforeAll(async () => {
    if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}: apt-get install -y chromium (or set ET_CHROMIUM)`)
    await mkdir(artifacts, { recursive: true })
    work = await mkdtemp(path.join(tmpdir(), 'et-browser-'))
    // The assets are built by the test from the current source, never taken from a stale dist/.
    const root = await buildWeb({ outDir: path.join(work, 'web') })
    const parsed = loadServerConfig(['--host', '127.0.0.1', '--port', '0', '--data-dir', path.join(work, 'data'), '--allow-private-urls', '--workers', '2', '--log-level', 'error'], {})
    if (parsed.help) throw new Error('unexpected --help')
    deps = await createDeps(parsed.config, createLogger('error'))
    appOptions = { registration: 'open', maxUploadBytes: parsed.config.maxUploadBytes, logger: false, dashboard: { root } }
    app = await buildApp(deps.services, appOptions)
    await app.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const created = await fetch(`${base}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...user, email: 'dana@example.com' }) })
    expect(created.status).toBe(201)

    browser = await chromium.launch({
      executablePath,
      headless: true,
      // Playwright gives every launch a fresh, empty profile directory. Without the network
      // flags Chromium keeps trying to reach Google's hosts, which this machine refuses.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true })
    page = await context.newPage()
    watchProblems(page)
  })

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && page !== undefined) await shot(`FAILED-${ctx.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`).catch(() => {})
  })

  afterAll(async () => {
    await browser?.close()
    await app?.close()
    await deps?.close()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  it('refuses a wrong password with a clear message, then signs in and goes live', async () => {
    await page.goto(`${base}/`)
    await signIn(page, 'not the password')
    const alert = page.getByRole('alert')
    await alert.waitFor()
    expect(await alert.textContent()).toBe('Wrong username or password.')
    await shot('sign-in-wrong-password')
    await signIn(page)
    await page.locator('.live-status[data-mode="live"]').waitFor({ timeout: 10_000 })
    expect(await page.locator('header .user').textContent()).toBe(user.username)
    // The credentials live in sessionStorage, never localStorage or a cookie.
    expect(await page.evaluate(() => sessionStorage.getItem('elastic-thought.session'))).toContain('Basic ')
    expect(await page.evaluate(() => localStorage.length)).toBe(0)
    expect(await context.cookies()).toEqual([])
  })

  it('uploads the quadrants datafile and splits it into a dataset, the lists updating live', async () => {
    const upload = page.locator('form[data-form="datafile-upload"]')
    await upload.locator('input[type="file"]').setInputFiles(path.join(example, 'quadrants.tar.gz'))
    await upload.getByLabel('Name (optional)').fill('quadrants')
    await upload.getByRole('button', { name: 'Upload' }).click()
    await page.locator('table[data-resource="datafile"] tr[data-state="finished_successfully"]').waitFor({ timeout: 30_000 })
    expect(await page.locator('table[data-resource="datafile"] tbody tr').first().textContent()).toContain('quadrants')

    await page.getByRole('button', { name: 'Create dataset' }).click()
    await page.locator('table[data-resource="dataset"] tr[data-state="finished_successfully"]').waitFor({ timeout: 30_000 })
    await shot('data')
  })

  it('shows the server\'s 400 message for a net that does not parse, then takes the example solver', async () => {
    await page.getByRole('link', { name: 'Solvers', exact: true }).click()
    const form = page.locator('form[data-form="solver"]')
    const broken = path.join(work, 'broken_net.prototxt')
    await writeFile(broken, 'name: "Broken"\nlayer { name: "data" type: "ImageData" top: "data"\n')
    await form.getByLabel('Solver prototxt').setInputFiles(path.join(example, 'solver.prototxt'))
    await form.getByLabel('Net prototxt').setInputFiles(broken)
    await form.getByRole('button', { name: 'Upload solver' }).click()
    const alert = form.getByRole('alert')
    await alert.waitFor()
    const message = await alert.textContent() ?? ''
    // The server's own words (it names the field and the parse problem), not a generic failure.
    expect(message).toMatch(/specification-net|net/i)
    expect(message).not.toMatch(/^\d{3} /)
    await shot('solver-400')

    // The example solver with 4× the iterations: a run of a few seconds would report its
    // progress only once or twice (every 2 s), too few to watch the chart grow.
    const longer = path.join(work, 'solver.prototxt')
    await writeFile(longer, (await readFile(path.join(example, 'solver.prototxt'), 'utf8')).replace(/max_iter: \d+/, 'max_iter: 1200').replace(/snapshot: \d+/, 'snapshot: 400'))
    await form.getByLabel('Solver prototxt').setInputFiles(longer)
    await form.getByLabel('Net prototxt').setInputFiles(path.join(example, 'train_test.prototxt'))
    await form.getByRole('button', { name: 'Upload solver' }).click()
    await form.locator('.notice-ok').waitFor()
    await page.locator('table[data-resource="solver"] tbody tr').waitFor()
    expect(await page.locator('table[data-resource="solver"] tbody tr').count()).toBe(1)
  })

  it('starts a training job and watches its chart gain points while it runs', async () => {
    await page.getByRole('link', { name: 'Training', exact: true }).click()
    await page.getByRole('button', { name: 'Start training' }).click()
    await page.waitForURL(/#\/training-jobs\/[0-9a-f]+$/)
    // Every value the chart's point count takes, as the page sees it.
    await page.evaluate(() => {
      const seen: number[] = []
      Reflect.set(window, 'pointCounts', seen)
      const figure = document.querySelector('figure.training-chart')
      if (figure === null) throw new Error('no chart')
      new MutationObserver(() => { seen.push(Number(figure.getAttribute('data-points'))) }).observe(figure, { attributes: true, attributeFilter: ['data-points'] })
    })
    await page.locator('h1 .state-finished_successfully').waitFor({ timeout: 120_000 })
    const counts = await page.evaluate(() => Reflect.get(window, 'pointCounts') as number[])
    const distinct = [...new Set(counts.filter((n) => n > 0))]
    // Points arrived in more than one update, and only ever grew.
    expect(distinct.length, `point counts seen: ${counts.join(', ')}`).toBeGreaterThanOrEqual(2)
    expect([...distinct].sort((a, b) => a - b)).toEqual(distinct)
    expect(await page.locator('.training-chart canvas').count()).toBe(2)
    // Loss over several orders of magnitude reads better on a log axis; the chart is redrawn.
    await page.getByLabel('Logarithmic loss axis').check()
    expect(await page.locator('.training-chart canvas').count()).toBe(2)
    expect(await page.locator('figure.training-chart').getAttribute('data-points')).toBe(String(distinct[distinct.length - 1]))
    expect(await page.locator('.training-chart figcaption').textContent()).toMatch(/accuracy/)

    // The log followed the run to its end; snapshots and the model can be downloaded.
    await page.locator('pre.log', { hasText: 'Optimization Done' }).waitFor({ timeout: 15_000 })
    expect(await page.locator('section', { hasText: 'Snapshots' }).locator('tbody tr').count()).toBeGreaterThanOrEqual(1)
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download trained model' }).click()])
    expect(download.suggestedFilename()).toMatch(/\.caffemodel$/)
    expect((await stat(await download.path())).size).toBeGreaterThan(100)
    const [snapshot] = await Promise.all([page.waitForEvent('download'), page.locator('section', { hasText: 'Snapshots' }).getByRole('button').first().click()])
    expect(snapshot.suggestedFilename()).toMatch(/snapshot_iter_\d+\.caffemodel$/)

    await page.locator('pre.log').evaluate((el) => { el.scrollTop = el.scrollHeight })
    const file = await shot('training-job')
    if (process.env.ET_DOCS_SCREENSHOT === '1') {
      // The README's picture: the top of the page (summary, progress, charts), palette PNG.
      const top = await page.screenshot({ fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1150 } })
      await sharp(top).png({ palette: true, quality: 90, compressionLevel: 9 }).toFile(path.join(repo, 'docs/images/training-page.png'))
    }
    expect(existsSync(file)).toBe(true)
    // On a phone-sized screen nothing is wider than the screen (tables scroll in their card).
    await page.setViewportSize({ width: 390, height: 844 })
    await page.waitForTimeout(200)
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    await shot('training-job-narrow')
    await page.setViewportSize({ width: 1280, height: 900 })
  })

  it('makes a classifier and classifies dropped images, showing the top labels beside each', async () => {
    const form = page.locator('form[data-form="classifier"]')
    await form.getByLabel('Deploy prototxt').setInputFiles(path.join(example, 'deploy.prototxt'))
    await form.getByLabel('Image width').fill('12')
    await form.getByLabel('Image height').fill('12')
    await form.getByLabel('Scale').fill('1')
    await form.getByRole('button', { name: 'Create classifier' }).click()
    await page.waitForURL(/#\/classifiers\/[0-9a-f]+$/)

    // A real drop: the files travel in a DataTransfer, as they do from a desktop.
    const images = await Promise.all(['ne.png', 'sw.png'].map(async (name) => ({ name, b64: (await readFile(path.join(example, name))).toString('base64') })))
    const dataTransfer = await page.evaluateHandle((files) => {
      const dt = new DataTransfer()
      for (const f of files) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: 'image/png' }))
      return dt
    }, images)
    await page.locator('.drop-zone').dispatchEvent('drop', { dataTransfer })

    for (const name of ['ne.png', 'sw.png']) {
      const result = page.locator(`.image-result[data-file="${name}"]`)
      await result.locator('ol.predictions li').first().waitFor({ timeout: 60_000 })
      const labels = await result.locator('ol.predictions li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-label')))
      expect(labels.length).toBe(4)
      expect(labels[0]).toBe(name.replace('.png', ''))
      expect(await result.locator('img').getAttribute('src')).toMatch(/^blob:/)
    }
    await shot('classify')
    await page.getByRole('link', { name: 'Classifiers', exact: true }).click()
    await page.locator('table[data-resource="classify-job"] tr[data-state="finished_successfully"]').waitFor()
  })

  it('cancels a running training job from its page', async () => {
    await page.getByRole('link', { name: 'Training', exact: true }).click()
    await page.getByRole('button', { name: 'Start training' }).click()
    await page.waitForURL(/#\/training-jobs\/[0-9a-f]+$/)
    await page.locator('h1 .state-processing').waitFor({ timeout: 30_000 })
    // The page asks before stopping a run.
    page.once('dialog', (dialog) => { dialog.accept().catch(() => {}) })
    await page.getByRole('button', { name: 'Cancel training' }).click()
    await page.locator('h1 .state-cancelled').waitFor({ timeout: 15_000 })
    expect(await page.getByRole('button', { name: 'Cancel training' }).count()).toBe(0)
    await shot('training-cancelled')
  })

  it('falls back to polling when the event stream cannot be opened', async () => {
    const other = await browser.newContext({ viewport: { width: 800, height: 900 } })
    try {
      await other.route('**/events', (route) => route.abort('connectionrefused'))
      const p = await other.newPage()
      await p.goto(`${base}/`)
      await signIn(p)
      await p.locator('.live-status[data-mode="polling"]').waitFor({ timeout: 10_000 })
      // Created behind the page's back: only a poll can bring it.
      const made = await api('POST', '/datafiles', { url: 'http://127.0.0.1:9/nothing.tar.gz', name: 'polled' })
      await p.locator(`table[data-resource="datafile"] tr[data-id="${String(made.id)}"]`).waitFor({ timeout: 15_000 })
      await shot('polling-fallback', p)
    } finally {
      await other.close()
    }
  })

  it('after the server restarts, resumes the event stream from its last event instead of reloading the lists', async () => {
    const other = await browser.newContext({ viewport: { width: 800, height: 900 } })
    try {
      const sentIds: Array<string | undefined> = []
      await other.route('**/events', async (route) => {
        sentIds.push(route.request().headers()['last-event-id'])
        await route.continue()
      })
      const p = await other.newPage()
      watchProblems(p)
      let listLoads = 0
      p.on('request', (req) => { if (req.method() === 'GET' && new URL(req.url()).pathname === '/datafiles') listLoads++ })
      await p.goto(`${base}/`)
      await signIn(p)
      await p.locator('.live-status[data-mode="live"]').waitFor({ timeout: 10_000 })
      // A change seen live gives the page an event id to come back with.
      const seen = await api('POST', '/datafiles', { url: 'http://127.0.0.1:9/seen.tar.gz', name: 'seen live' })
      await p.locator(`table[data-resource="datafile"] tr[data-id="${String(seen.id)}"]`).waitFor({ timeout: 10_000 })
      await p.waitForTimeout(500)
      const loadsBefore = listLoads

      // The server goes away (ending every stream) and comes back on the same port; a datafile
      // is made while it is down. The page retries after 1 s and polls only after 5 s, so only
      // a resumed stream can bring the new row without a list reload.
      // The new app is built first, so the port is closed only for as long as a restart of the
      // listener takes, well inside the page's first retry even on a slow machine.
      const port = (app.server.address() as AddressInfo).port
      const next = await buildApp(deps.services, appOptions)
      await next.ready()
      await app.close()
      const away = await deps.services.resources.createDatafile('user:dana' as TenantId, NewDatafile.parse({ url: 'http://127.0.0.1:9/away.tar.gz', name: 'made while away' }))
      app = next
      await app.listen({ host: '127.0.0.1', port })
      await p.locator(`table[data-resource="datafile"] tr[data-id="${away._id}"]`).waitFor({ timeout: 4_000 })
      expect(sentIds[0]).toBeUndefined()
      expect(sentIds.at(-1)).toMatch(/^\S+$/)
      expect(listLoads).toBe(loadsBefore)
      await p.locator('.live-status[data-mode="live"]').waitFor({ timeout: 5_000 })
    } finally {
      await other.close()
    }
  })

  it('signs out, forgetting the credentials', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Sign in' }).waitFor()
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    await page.reload()
    await page.getByRole('button', { name: 'Sign in' }).waitFor()
    await shot('signed-out')
    // The wrong password (401) and the broken net (400) were meant to fail; nothing else may.
    const unexpected = problems.filter((p) => !/status of 40[01]/.test(p))
    expect(unexpected, unexpected.join('\n')).toEqual([])
  })
})
