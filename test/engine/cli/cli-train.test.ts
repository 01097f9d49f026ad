import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { runCli } from '../../../src/engine/cli.js'
import { parseCaffeLog } from '../../../src/engine/log/caffe-log-parser.js'
import { createQuadrantWorkspace, type QuadrantWorkspace } from '../solver/synthetic-data.js'
import { captureIo, fatalLines } from './cli-io.js'
import { kernelKinds, withBlas } from '../../helpers/kernel-paths.js'

let ws: QuadrantWorkspace
const learnLogs = new Map<string, string>()
beforeAll(async () => { ws = await createQuadrantWorkspace() })
afterAll(() => ws.cleanup())

const SOLVER = (prefix: string, maxIter: number, extra = ''): string => `base_lr: 0.05
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
display: 10
max_iter: ${maxIter}
test_iter: 3
test_interval: 50
snapshot_prefix: "${prefix}"
random_seed: 42
solver_mode: GPU
${extra}`

async function train (...argv: string[]): Promise<{ code: number, log: string }> {
  const io = captureIo()
  const code = await runCli(['train', ...argv], io)
  return { code, log: io.err() }
}

/** `iter → loss` of the 1.0-style display lines. */
const lossCurve = (log: string): Map<number, string> =>
  new Map([...log.matchAll(/\] Iteration (\d+) \([^)]*\), loss = (\S+)$/gm)].map((m) => [Number(m[1]), m[2] ?? '']))

describe('et-caffe train on a real LMDB', () => {
  it.each(kernelKinds)('learns the quadrant task on the %s kernel path', async (kernels) => {
    const solver = ws.writeSolver(`learn-${kernels}.prototxt`, SOLVER(join(ws.dir, `learn-${kernels}`), 150))
    const { code, log } = await train(`--solver=${solver}`, `--kernels=${kernels}`)
    learnLogs.set(kernels, log)
    expect(fatalLines(log)).toEqual([])
    expect(code).toBe(0)
    // solver_mode GPU is accepted: logged, then run on the CPU.
    expect(log).toMatch(/^W.* caffe\.cpp:211\] GPU 0 requested/m)
    expect(log).toMatch(/caffe\.cpp:211\] Use CPU\.$/m)
    expect(log).toMatch(new RegExp(`caffe\\.cpp:211\\] Kernels: ${kernels} `))
    const { events, summary } = parseCaffeLog(log)
    expect(summary.done).toBe(true)
    expect(summary.testPasses).toBe(4)
    const firstLoss = events.find((e) => e.kind === 'train-loss')
    expect(firstLoss?.kind === 'train-loss' ? firstLoss.loss : 0).toBeGreaterThan(1.2)
    expect(summary.lastTest?.iter).toBe(150)
    expect(summary.lastTest?.outputs.accuracy).toBeGreaterThanOrEqual(0.9)
    expect(summary.lastTest?.outputs.loss).toBeLessThan(0.3)
    expect(summary.lastModelSnapshot).toBe(`${join(ws.dir, `learn-${kernels}`)}_iter_150.caffemodel`)
  })

  it.runIf(withBlas)('both kernel paths give the same curve within float tolerance', () => {
    const ts = lossCurve(learnLogs.get('ts') ?? '')
    const blas = lossCurve(learnLogs.get('blas') ?? '')
    expect(ts.size).toBe(15)
    expect([...blas.keys()]).toEqual([...ts.keys()])
    for (const [iter, loss] of ts) {
      const a = Number(loss)
      const b = Number(blas.get(iter))
      expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(a)))
    }
  })

  it('--snapshot resumes to the same losses and the same final weights as an uninterrupted run', async () => {
    const whole = join(ws.dir, 'whole')
    const solverA = ws.writeSolver('whole.prototxt', SOLVER(whole, 100, 'snapshot: 40'))
    const a = await train(`--solver=${solverA}`, '--kernels=ts')
    expect(a.code).toBe(0)
    const resumed = join(ws.dir, 'resumed')
    const solverB = ws.writeSolver('resumed.prototxt', SOLVER(resumed, 100))
    const b = await train(`--solver=${solverB}`, `--snapshot=${whole}_iter_40.solverstate`, '--kernels=ts')
    expect(fatalLines(b.log)).toEqual([])
    expect(b.code).toBe(0)
    expect(b.log).toContain(`caffe.cpp:242] Resuming from ${whole}_iter_40.solverstate`)
    expect(b.log).toContain('sgd_solver.cpp:318] SGDSolver: restoring history')
    const curveA = lossCurve(a.log)
    const curveB = lossCurve(b.log)
    expect([...curveB.keys()]).toEqual([40, 50, 60, 70, 80, 90])
    for (const [iter, loss] of curveB) expect(loss).toBe(curveA.get(iter))
    // Tests at 50 and 100 read the test LMDB from where the interrupted run left it.
    const testsOf = (log: string): string[] => [...log.matchAll(/Test net output #\d+: (.*)$/gm)].map((m) => m[1] ?? '')
    expect(testsOf(b.log)).toEqual(testsOf(a.log).slice(2))
    expect(readFileSync(`${resumed}_iter_100.caffemodel`).equals(readFileSync(`${whole}_iter_100.caffemodel`))).toBe(true)
  })

  it('--weights fine-tunes from a trained model: the first test already scores like the model', async () => {
    const solver = ws.writeSolver('finetune.prototxt', SOLVER(join(ws.dir, 'finetune'), 0))
    const { code, log } = await train(`--solver=${solver}`, `--weights=${join(ws.dir, 'learn-ts')}_iter_150.caffemodel`, '--kernels=ts')
    expect(code).toBe(0)
    expect(log).toContain(`caffe.cpp:155] Finetuning from ${join(ws.dir, 'learn-ts')}_iter_150.caffemodel`)
    expect(parseCaffeLog(log).summary.lastTest?.outputs.accuracy).toBeGreaterThanOrEqual(0.9)
  })

  it('test scores a trained model over --iterations batches of the TEST phase', async () => {
    const io = captureIo()
    const code = await runCli(['test', `--model=${ws.net}`, `--weights=${join(ws.dir, 'learn-ts')}_iter_150.caffemodel`, '--iterations=4', '--kernels=ts'], io)
    expect(code).toBe(0)
    const log = io.err()
    expect(log).toContain('caffe.cpp:290] Running for 4 iterations.')
    expect(log.match(/caffe\.cpp:313\] Batch \d, accuracy = /g)).toHaveLength(4)
    const accuracy = Number(/caffe\.cpp:330\] accuracy = (\S+)$/m.exec(log)?.[1])
    expect(accuracy).toBeGreaterThanOrEqual(0.9)
    expect(log).toMatch(/caffe\.cpp:330\] loss = \S+ \(\* 1 = \S+ loss\)$/m)
  })

  it('SIGINT stops the real process cleanly: snapshot, "Optimization stopped early.", exit 0', async () => {
    const prefix = join(ws.dir, 'sigint')
    const solver = ws.writeSolver('sigint.prototxt', SOLVER(prefix, 1_000_000).replace('display: 10', 'display: 1'))
    const cli = fileURLToPath(new URL('../../../src/engine/cli.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'train', `--solver=${solver}`, '--kernels=ts'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let log = ''
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString('utf8')
      // Interrupt once training is under way.
      if (/\] Iteration 5 \(/.test(log) && child.exitCode === null && !child.killed) child.kill('SIGINT')
    })
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
    expect(code).toBe(0)
    expect(log).toContain('solver.cpp:294] Optimization stopped early.')
    expect(log).toContain('caffe.cpp:259] Optimization Done.')
    const iter = Number(/Snapshotting to binary proto file .*_iter_(\d+)\.caffemodel$/m.exec(log)?.[1])
    expect(iter).toBeGreaterThanOrEqual(5)
    expect(existsSync(`${prefix}_iter_${iter}.solverstate`)).toBe(true)
  })

  it('a data source that is not an LMDB fails with one line naming the layer and the file', async () => {
    const fake = join(ws.dir, 'fake_lmdb')
    mkdirSync(fake, { recursive: true })
    writeFileSync(join(fake, 'data.mdb'), Buffer.alloc(8192, 7))
    const net = join(ws.dir, 'fake_net.prototxt')
    writeFileSync(net, readFileSync(ws.net, 'utf8').replace(join(ws.dir, 'train_lmdb'), fake))
    const solver = join(ws.dir, 'fake_solver.prototxt')
    writeFileSync(solver, `net: "${net}"\n${SOLVER(join(ws.dir, 'fake'), 10)}`)
    const { code, log } = await train(`--solver=${solver}`, '--kernels=ts')
    expect(code).toBe(1)
    const lines = fatalLines(log)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('layer "data" (Data)')
    expect(lines[0]).toContain(fake)
    expect(log).not.toContain('    at ')
  })
})
