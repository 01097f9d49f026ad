import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CaffeStartError, createCaffeCommand } from '../../src/jobs/caffe-command.js'
import { processAlive } from '../../src/lib/process-alive.js'

// A stand-in for a real `caffe` binary: records how it was called, then behaves as its
// solver file says (fail with an F line, or start a grandchild and hang, ignoring SIGTERM).
const STUB = `#!${process.execPath}
const { writeFileSync, readFileSync } = require('node:fs')
const { spawn } = require('node:child_process')
writeFileSync('called.json', JSON.stringify({ argv: process.argv.slice(2), glog: process.env.GLOG_logtostderr ?? null }))
const mode = readFileSync(process.argv.find((a) => a.startsWith('--solver=')).slice(9), 'utf8').trim()
process.stdout.write('some stdout\\n')
if (mode === 'fail') {
  process.stderr.write('I1121 10:00:00.000001  4242 caffe.cpp:211] Use GPU.\\n')
  process.stderr.write('F1121 10:00:00.000002  4242 layer_factory.hpp:81] Check failed: registry.count(type) == 1 (0 vs. 1) Unknown layer type: Deconvolution (known types: Convolution)\\n')
  process.stderr.write('*** Check failure stack trace: ***\\n')
  process.exit(134)
}
if (mode === 'hang') {
  process.on('SIGTERM', () => {})
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
  process.stderr.write('grandchild ' + child.pid + '\\n')
  setInterval(() => {}, 1000)
}
`

let dir = ''
let bin = ''
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'et-caffe-command-'))
  bin = join(dir, 'caffe')
  await writeFile(bin, STUB)
  await chmod(bin, 0o755)
})
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('caffe command', () => {
  it('runs a real Caffe for train with --gpu, glog to stderr, and reports the exit code and the fatal line', async () => {
    await writeFile(join(dir, 'fail.prototxt'), 'fail')
    const caffe = createCaffeCommand({ caffeBin: bin, gpu: '0,1', kernels: 'ts' })
    expect(caffe.trainer).toBe(bin)
    const out: string[] = []
    const run = caffe.train({ solver: 'fail.prototxt', snapshot: 'snapshot_iter_10.solverstate' }, { cwd: dir, signal: new AbortController().signal, onStdout: (c) => { out.push(c.toString()) } })
    const exit = await run.exited
    expect(exit.code).toBe(134)
    expect(exit.fatal).toBe('Check failed: registry.count(type) == 1 (0 vs. 1) Unknown layer type: Deconvolution (known types: Convolution)')
    expect(exit.tail.at(-1)).toBe('*** Check failure stack trace: ***')
    expect(out.join('')).toBe('some stdout\n')
    // Engine-only flags (--kernels) never reach a real Caffe.
    expect(JSON.parse(await readFile(join(dir, 'called.json'), 'utf8'))).toEqual({
      argv: ['train', '--solver=fail.prototxt', '--snapshot=snapshot_iter_10.solverstate', '--gpu=0,1'],
      glog: '1'
    })
  })

  it('an abort kills the whole process group, SIGKILL after the grace if SIGTERM is ignored', async () => {
    await writeFile(join(dir, 'hang.prototxt'), 'hang')
    const caffe = createCaffeCommand({ caffeBin: bin, gpu: null, killGraceMs: 300 })
    const controller = new AbortController()
    let stderr = ''
    const run = caffe.train({ solver: 'hang.prototxt' }, { cwd: dir, signal: controller.signal, onStderr: (c) => { stderr += c.toString() } })
    for (let i = 0; i < 200 && !/grandchild \d+/.test(stderr); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    const grandchild = Number(/grandchild (\d+)/.exec(stderr)?.[1])
    expect(processAlive(grandchild)).toBe(true)
    const started = Date.now()
    controller.abort(new Error('cancelled by the test'))
    await expect(run.exited).rejects.toThrow('cancelled by the test')
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    expect(processAlive(run.pid ?? -1)).toBe(false)
    for (let i = 0; i < 100 && processAlive(grandchild); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(processAlive(grandchild)).toBe(false)
  })

  it('a missing binary is a CaffeStartError (worth retrying on another worker)', async () => {
    const caffe = createCaffeCommand({ caffeBin: join(dir, 'no-such-caffe'), gpu: null })
    const run = caffe.train({ solver: 'x.prototxt' }, { cwd: dir, signal: new AbortController().signal })
    await expect(run.exited).rejects.toBeInstanceOf(CaffeStartError)
    await expect(run.exited).rejects.toThrow(`cannot start Caffe at ${join(dir, 'no-such-caffe')}: not found`)
  })

  it('runs the builtin engine from source through tsx, whatever the working directory', async () => {
    const caffe = createCaffeCommand({ caffeBin: null, gpu: '0' })
    expect(caffe.usesBuiltinTrainer).toBe(true)
    const run = caffe.train({ solver: 'missing-solver.prototxt' }, { cwd: dir, signal: new AbortController().signal })
    const exit = await run.exited
    expect(exit.code).toBe(1)
    expect(exit.fatal).toMatch(/missing-solver\.prototxt/)
  })
})
