import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { extract } from 'tar'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebhookPayload } from '../../models/notify.js'
import { verifyWebhookSignature } from '../../src/webhooks/webhook-signature.js'
import { startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { repoRoot } from '../helpers/processes.js'
import { startReceiver } from '../webhooks/webhook-receiver.js'
import type { WebhookReceiver } from '../webhooks/webhook-receiver.js'
import { runEt, startEt } from './run-et.js'

const EX = join(repoRoot, 'docs/examples/quadrants')
const USER = 'cli-user'
const PASSWORD = 'a long cli password'

/**
 * `et` end to end: the real server (in-process scheduler, builtin engine) on a random port, and
 * the CLI as a child process with its own HOME and XDG_CONFIG_HOME, talking only to the API.
 */
describe('et, the command-line client', () => {
  let t: TestApp
  let url: string
  let receiver: WebhookReceiver
  const home = mkdtempSync(join(tmpdir(), 'et-cli-'))
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'xdg') }
  const api = async (path: string, init: RequestInit = {}): Promise<Response> => await fetch(`${url}${path}`, { ...init, headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`, ...init.headers } })

  beforeAll(async () => {
    receiver = await startReceiver()
    t = await startTestApp({ logLevel: (process.env.ET_TEST_LOG ?? 'silent') as 'silent' }, { runJobs: true })
    url = await t.app.listen({ host: '127.0.0.1', port: 0 })
    const created = await fetch(`${url}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: USER, email: 'cli@example.com', password: PASSWORD }) })
    expect(created.status).toBe(201)
  })
  afterAll(async () => {
    await t.close()
    await receiver.close()
    rmSync(home, { recursive: true, force: true })
  })

  it('explains itself: --help, usage errors exit 2, not being logged in exits 1', async () => {
    const help = await runEt(['--help'], env)
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('et datafile upload')
    expect(help.stdout).toContain('in clear')
    const train = await runEt(['train', '--help'], env)
    expect(train.stdout).toContain('--follow')
    expect(train.stdout).toContain('cancel the training job? [y/N]')
    const missing = await runEt(['train'], env)
    expect(missing).toMatchObject({ code: 2, stdout: '' })
    expect(missing.stderr).toContain('et: missing <solver-id>')
    expect((await runEt(['frobnicate'], env)).code).toBe(2)
    expect((await runEt(['jobs', '--bogus'], env)).code).toBe(2)
    const anonymous = await runEt(['jobs'], env)
    expect(anonymous.code).toBe(1)
    expect(anonymous.stderr).toContain('not logged in')
  }, 60_000)

  it('logs in with answers on stdin, keeps the config private, and never prints the password', async () => {
    const wrong = await runEt(['login', '--url', url], { ...env, XDG_CONFIG_HOME: join(home, 'elsewhere') }, `${USER}\nnot the password\n`)
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/et: .*\(ET_UNAUTHORIZED, HTTP 401\)/)
    expect(() => statSync(join(home, 'elsewhere'))).toThrow()

    const login = await runEt(['login', '--url', url], env, `${USER}\n${PASSWORD}\n`)
    expect(login.code, login.stderr).toBe(0)
    expect(login.stderr).toContain('Password: ')
    const file = join(env.XDG_CONFIG_HOME, 'elastic-thought', 'config.json')
    expect(login.stdout).toContain(`logged in to ${url} as ${USER}`)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(statSync(join(env.XDG_CONFIG_HOME, 'elastic-thought')).mode & 0o777).toBe(0o700)
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ url, username: USER, password: PASSWORD })
    expect(login.stdout + login.stderr).not.toContain(PASSWORD)

    // The environment alone works too, and overrides the file.
    const viaEnv = await runEt(['jobs', '--json'], { HOME: home, XDG_CONFIG_HOME: join(home, 'empty'), ET_URL: url, ET_USERNAME: USER, ET_PASSWORD: PASSWORD })
    expect(viaEnv.code, viaEnv.stderr).toBe(0)
    expect(JSON.parse(viaEnv.stdout)).toEqual([])
    const badEnv = await runEt(['jobs'], { ...env, ET_PASSWORD: 'wrong password!' })
    expect(badEnv.code).toBe(1)
    expect(badEnv.stderr).toContain('et login')
  }, 60_000)

  it('takes a folder of images to a trained model and a classified image', async () => {
    // The example's images, laid out as a user would have them: <label>/<image>.
    const images = join(home, 'quadrants')
    await mkdir(images)
    await extract({ file: join(EX, 'quadrants.tar.gz'), cwd: images })
    writeFileSync(join(images, '.DS_Store'), 'junk a Mac leaves behind')

    const upload = await runEt(['datafile', 'upload', images, '--json'], env)
    expect(upload.code, upload.stderr).toBe(0)
    expect(upload.stderr).toContain('uploaded (160 images in 4 labels')
    const datafile = JSON.parse(upload.stdout) as { id: string, name: string }
    expect(datafile.name).toBe('quadrants')

    const dataset = await runEt(['dataset', 'create', datafile.id, '--split', '0.8', '--wait', '--json'], env)
    expect(dataset.code, dataset.stderr).toBe(0)
    expect(JSON.parse(dataset.stdout)).toMatchObject({ 'processing-state': 'finished_successfully', labels: ['ne', 'nw', 'se', 'sw'], training: { 'split-percentage': 0.8 } })
    const checked = await (await api(`/datafiles/${datafile.id}`)).json() as Record<string, unknown>
    expect(checked).toMatchObject({ 'image-count': 160, labels: ['ne', 'nw', 'se', 'sw'], format: 'images-tar-gz' })

    const solver = await runEt(['solver', 'create', '--dataset', JSON.parse(dataset.stdout).id, '--solver', join(EX, 'solver.prototxt'), '--net', join(EX, 'train_test.prototxt')], env)
    expect(solver.code, solver.stderr).toBe(0)
    const solverId = solver.stdout.trim()
    expect(solverId).toMatch(/^[0-9a-f]{32}$/)
    expect(solver.stderr).toContain('(max_iter 300)')

    const train = await runEt(['train', solverId, '--follow', '--notify-url', receiver.url('/trained')], env)
    expect(train.code, train.stderr).toBe(0)
    const jobId = train.stdout.trim()
    expect(jobId).toMatch(/^[0-9a-f]{32}$/)
    // Progress lines (stderr is not a terminal here, so one line per update) then the summary.
    expect(train.stderr).toMatch(/training [0-9a-f]{8}: \[[#-]{24}\] \d+\/300 {2}loss \S+/)
    expect(train.stderr).toMatch(new RegExp(`training job ${jobId} finished_successfully in [\\d.]+ s: 300/300 iterations, loss \\S+, accuracy 1\\b`))

    // The job's webhook, signed with the secret `et webhook-secret` shows.
    const [hook] = await receiver.waitFor(1)
    const secret = await runEt(['webhook-secret'], env)
    expect(verifyWebhookSignature(secret.stdout.trim(), String(hook?.headers['x-elasticthought-signature']), hook?.body ?? '')).toBe(true)
    const payload = WebhookPayload.parse(JSON.parse(hook?.body ?? ''))
    expect(payload).toMatchObject({ id: jobId, state: 'finished_successfully', training: { iteration: 300, 'max-iter': 300, 'model-url': `${url}/training-jobs/${jobId}/model` } })

    const modelPath = join(home, 'quadrants.caffemodel')
    const download = await runEt(['download', jobId, '-o', modelPath], env)
    expect(download.code, download.stderr).toBe(0)
    expect(download.stdout.trim()).toBe(modelPath)
    const served = Buffer.from(await (await api(`/training-jobs/${jobId}/model`)).arrayBuffer())
    expect(served.length).toBeGreaterThan(100)
    expect(readFileSync(modelPath).equals(served)).toBe(true)

    const classifier = await runEt(['classifier', 'create', '--training-job', jobId, '--deploy', join(EX, 'deploy.prototxt'), '--width', '12', '--height', '12', '--scale', '1'], env)
    expect(classifier.code, classifier.stderr).toBe(0)
    const classifierId = classifier.stdout.trim()

    const classify = await runEt(['classify', classifierId, join(EX, 'ne.png'), join(EX, 'sw.png'), '--top', '2'], env)
    expect(classify.code, classify.stderr).toBe(0)
    const rows = classify.stdout.trimEnd().split('\n').map((line) => line.trim().split(/\s{2,}/))
    expect(rows[0]).toEqual(['IMAGE', 'LABEL', 'PROBABILITY'])
    expect(rows).toHaveLength(5)
    expect(rows[1]?.slice(0, 2)).toEqual([join(EX, 'ne.png'), 'ne'])
    expect(rows[3]?.slice(0, 2)).toEqual([join(EX, 'sw.png'), 'sw'])
    for (const row of rows.slice(1)) expect(Number(row.at(-1))).toBeGreaterThanOrEqual(0)
    expect(Number(rows[1]?.[2])).toBeGreaterThan(0.5)

    const asJson = await runEt(['classify', classifierId, join(EX, 'sw.png'), '--json', '--notify-url', receiver.url('/classified')], env)
    expect(asJson.code, asJson.stderr).toBe(0)
    const result = JSON.parse(asJson.stdout) as { state: string, images: Array<{ image: string, label: string, predictions: Array<{ label: string, probability: number }> }> }
    expect(result.state).toBe('finished_successfully')
    expect(result.images[0]).toMatchObject({ image: join(EX, 'sw.png'), label: 'sw' })
    expect(result.images[0]?.predictions).toHaveLength(4)
    const classified = (await receiver.waitFor(2)).find((r) => r.path === '/classified')
    expect(WebhookPayload.parse(JSON.parse(classified?.body ?? '')).classify?.images).toEqual([
      { key: 'sw.png', url: null, filename: 'sw.png', label: 'sw', predictions: result.images[0]?.predictions }
    ])

    const jobs = await runEt(['jobs', '--json'], env)
    const listed = JSON.parse(jobs.stdout) as Array<{ id: string, type: string, 'processing-state': string }>
    expect(listed.map((j) => j.type)).toEqual(['classify-job', 'classify-job', 'training-job', 'dataset', 'datafile'])
    expect(listed.find((j) => j.id === jobId)?.['processing-state']).toBe('finished_successfully')
    const table = await runEt(['jobs', '--type', 'training'], env)
    expect(table.stdout).toMatch(new RegExp(`training-job +${jobId} +finished_successfully +300/300 loss`))

    const logs = await runEt(['logs', jobId], env)
    expect(logs.stdout).toContain('Optimization Done.')
  }, 120_000)

  it('Ctrl-C while following asks whether to cancel: "y" cancels the job, "n" leaves it running', async () => {
    // A solver that would run for minutes, so there is time to interrupt it.
    const long = join(home, 'long-solver.prototxt')
    writeFileSync(long, readFileSync(join(EX, 'solver.prototxt'), 'utf8').replace('max_iter: 300', 'max_iter: 200000').replace('snapshot: 100', 'snapshot: 100000').replace('test_interval: 100', 'test_interval: 100000'))
    const datasets = JSON.parse((await runEt(['jobs', '--type', 'dataset', '--json'], env)).stdout) as Array<{ id: string }>
    const solver = (await runEt(['solver', 'create', '--dataset', datasets[0]?.id ?? '', '--solver', long, '--net', join(EX, 'train_test.prototxt')], env)).stdout.trim()

    for (const answer of ['y', 'n']) {
      const et = startEt(['train', solver, '--follow'], env)
      await et.waitForStderr(/\d+\/200000/)
      const jobId = et.stdout().trim()
      et.child.kill('SIGINT')
      await et.waitForStderr(new RegExp(`cancel the training job ${jobId}\\? \\[y/N\\] $`))
      et.child.stdin.write(`${answer}\n`)
      const done = await et.done
      expect(done.code).toBe(130)
      const job = await (await api(`/training-jobs/${jobId}`)).json() as Record<string, unknown>
      if (answer === 'y') {
        expect(done.stderr).toContain(`training job ${jobId} cancelled`)
        expect(job['processing-state']).toBe('cancelled')
      } else {
        expect(done.stderr).toContain(`training job ${jobId} keeps running; follow it again with: et follow ${jobId}`)
        expect(job['processing-state']).toBe('processing')
        expect((await api(`/training-jobs/${jobId}/cancel`, { method: 'POST' })).status).toBe(200)
      }
    }
  }, 90_000)

  it('reports the server\'s errors with their code, as text or as JSON', async () => {
    const text = await runEt(['train', 'no-such-solver'], env)
    expect(text.code).toBe(1)
    expect(text.stderr.trim()).toBe("et: solver 'no-such-solver' does not exist (ET_VALIDATION, HTTP 400)")
    const json = await runEt(['download', 'no-such-job', '--json'], env)
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'ET_NOT_FOUND', status: 404, exitCode: 1 } })
    const folder = join(home, 'flat')
    await mkdir(folder)
    writeFileSync(join(folder, 'loose.png'), 'x')
    const flat = await runEt(['datafile', 'upload', folder], env)
    expect(flat.code).toBe(2)
    expect(flat.stderr).toContain('no loose files')
  }, 60_000)
})
