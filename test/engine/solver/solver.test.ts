import { EventEmitter } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createKernels } from '../../../src/engine/kernels/create-kernels.js'
import { createLayer } from '../../../src/engine/layers/registry.js'
import type { Net } from '../../../src/engine/net.js'
import { MemoryLog } from '../../../src/engine/net/engine-log.js'
import { parseCaffeLog } from '../../../src/engine/log/caffe-log-parser.js'
import { decodeSolverState } from '../../../src/engine/proto/binary.js'
import { parseSolverPrototxt } from '../../../src/engine/proto/text-format.js'
import { Rng } from '../../../src/engine/random.js'
import { createFileSolverIo } from '../../../src/engine/solver/file-solver-io.js'
import { readResumeRecord } from '../../../src/engine/solver/resume-extension.js'
import { SignalHandler } from '../../../src/engine/solver/signal-handler.js'
import { Solver, SolverSetupError } from '../../../src/engine/solver/solver.js'

const kernels = createKernels({ kind: 'ts', threads: 1 })
let dir: string
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'et-solver-unit-')) })
afterAll(() => {
  kernels.close()
  rmSync(dir, { recursive: true, force: true })
})

// A fixed batch in Input blobs (so no data layer is involved) and a Dropout layer, so that the
// solver's random stream matters for the loss curve.
const NET = (dropout = true): string => `net_param {
  name: "fixed"
  layer { name: "in" type: "Input" top: "data" top: "label" input_param { shape { dim: 8 dim: 1 dim: 4 dim: 4 } shape { dim: 8 } } }
  layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" inner_product_param { num_output: 6 weight_filler { type: "xavier" } } }
  layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
  ${dropout ? 'layer { name: "drop1" type: "Dropout" bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.3 } }' : ''}
  layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
  layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy" include { phase: TEST } }
  layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
}
`

/** Class k brightens row k of the 4×4 image; the same batch for every net and every run. */
function fillBatch (net: Net): void {
  const rng = new Rng(99)
  const data = net.blobByName('data')!
  const label = net.blobByName('label')!
  for (let n = 0; n < 8; n++) {
    const k = n % 3
    label.data[n] = k
    for (let p = 0; p < 16; p++) data.data[n * 16 + p] = (Math.floor(p / 4) === k ? 1 : 0) + 0.2 * rng.uniform()
  }
}

interface RunOptions {
  body: string
  log?: MemoryLog
  signals?: EventEmitter
  sigint?: 'stop' | 'snapshot' | 'none'
  sighup?: 'stop' | 'snapshot' | 'none'
  dropout?: boolean
  /** Called after each iteration with the new iteration number (to send signals at a known point). */
  after?: (iter: number) => void
}

async function makeSolver (o: RunOptions): Promise<{ solver: Solver, losses: number[] }> {
  // Without a prefix, snapshot_after_train would write _iter_N files into the working directory.
  const body = o.body.includes('snapshot_prefix') ? o.body : `${o.body} snapshot_prefix: "${prefix('unnamed')}"`
  const param = parseSolverPrototxt(`${NET(o.dropout)}${body}`)
  const losses: number[] = []
  const handler = o.signals === undefined ? undefined : new SignalHandler(o.signals, o.sigint ?? 'stop', o.sighup ?? 'snapshot').install()
  const solver = await Solver.create(param, {
    kernels,
    createLayer,
    io: createFileSolverIo(),
    log: o.log,
    action: handler?.check,
    onIteration: (e) => {
      losses.push(e.loss)
      o.after?.(e.iter)
    }
  })
  fillBatch(solver.net)
  for (const t of solver.testNets) fillBatch(t)
  return { solver, losses }
}

const prefix = (name: string): string => join(dir, name)
const weights = (s: Solver): number[] => s.net.learnableParams.flatMap((p) => Array.from(p.blob.data))

describe('Solver', () => {
  it('trains, tests, displays and snapshots with Caffe 1.0\'s log lines', async () => {
    const log = new MemoryLog()
    const { solver } = await makeSolver({
      log,
      body: `base_lr: 0.1 momentum: 0.9 weight_decay: 0.0005 lr_policy: "step" gamma: 0.5 stepsize: 20
        display: 10 max_iter: 40 test_iter: 2 test_interval: 20 snapshot: 20 snapshot_prefix: "${prefix('disp')}" random_seed: 1`
    })
    await solver.solve()
    const lines = log.lines
    expect(lines).toContain('I solver.cpp:172] Creating test net (#0) specified by net_param')
    expect(lines).toContain('I solver.cpp:56] Solver scaffolding done.')
    expect(lines).toContain('I solver.cpp:272] Solving fixed')
    expect(lines).toContain('I solver.cpp:273] Learning Rate Policy: step')
    expect(lines).toContain('I solver.cpp:330] Iteration 0, Testing net (#0)')
    expect(lines.some((l) => /^I solver\.cpp:397\] {5}Test net output #0: accuracy = [\d.]+$/.test(l))).toBe(true)
    expect(lines.some((l) => /^I solver\.cpp:397\] {5}Test net output #1: loss = [\d.e-]+ \(\* 1 = [\d.e-]+ loss\)$/.test(l))).toBe(true)
    expect(lines.some((l) => /^I solver\.cpp:218\] Iteration 0 \(0 iter\/s, [\d.]+s\/10 iters\), loss = [\d.e-]+$/.test(l))).toBe(true)
    expect(lines.some((l) => /^I solver\.cpp:218\] Iteration 10 \([\d.e+]+ iter\/s, [\d.]+s\/10 iters\), loss = [\d.e-]+$/.test(l))).toBe(true)
    expect(lines.some((l) => /^I solver\.cpp:237\] {5}Train net output #0: loss = [\d.e-]+ \(\* 1 = [\d.e-]+ loss\)$/.test(l))).toBe(true)
    expect(lines).toContain('I sgd_solver.cpp:105] Iteration 10, lr = 0.1')
    expect(lines).toContain('I sgd_solver.cpp:105] Iteration 30, lr = 0.05')
    expect(lines).toContain(`I solver.cpp:447] Snapshotting to binary proto file ${prefix('disp')}_iter_20.caffemodel`)
    expect(lines).toContain(`I sgd_solver.cpp:273] Snapshotting solver state to binary proto file ${prefix('disp')}_iter_40.solverstate`)
    expect(lines.some((l) => /^I solver\.cpp:310\] Iteration 40, loss = [\d.e-]+$/.test(l))).toBe(true)
    expect(lines).toContain('I solver.cpp:330] Iteration 40, Testing net (#0)')
    expect(lines[lines.length - 1]).toBe('I solver.cpp:315] Optimization Done.')
    // snapshot_after_train does not write iteration 40 twice.
    expect(lines.filter((l) => l.includes('_iter_40.caffemodel'))).toHaveLength(1)
    expect(existsSync(`${prefix('disp')}_iter_20.caffemodel`)).toBe(true)
    const state = decodeSolverState(readFileSync(`${prefix('disp')}_iter_40.solverstate`))
    expect(state.iter).toBe(40)
    expect(state.learned_net).toBe(`${prefix('disp')}_iter_40.caffemodel`)
    expect(state.history).toHaveLength(4)
    // The trained net separates the three classes of the fixed batch.
    const last = solver.testResults[solver.testResults.length - 1]
    expect(last?.outputs.find((o) => o.name === 'accuracy')?.value).toBe(1)
    expect(last?.outputs.find((o) => o.name === 'loss')?.value).toBeLessThan(0.3)

    // The project's Caffe log parser reads our log like real Caffe's.
    const text = lines.map((l) => l.replace(/^([IWEF]) /, '$11121 02:00:00.000000 12345 ')).join('\n') + '\n'
    const { summary } = parseCaffeLog(text)
    expect(summary.done).toBe(true)
    expect(summary.trainLossCount).toBe(5)
    expect(summary.testPasses).toBe(3)
    expect(summary.lastModelSnapshot).toBe(`${prefix('disp')}_iter_40.caffemodel`)
    expect(summary.lastLr).toEqual({ iter: 30, lr: 0.05 })
    expect(summary.lastTest?.outputs.accuracy).toBe(1)
  })

  it('the same random_seed gives a bit-identical run; another seed does not', async () => {
    const body = (seed: number): string => `base_lr: 0.05 momentum: 0.9 lr_policy: "fixed" max_iter: 25 random_seed: ${seed}`
    const a = await makeSolver({ body: body(11) })
    const b = await makeSolver({ body: body(11) })
    const c = await makeSolver({ body: body(12) })
    await a.solver.solve()
    await b.solver.solve()
    await c.solver.solve()
    expect(b.losses).toEqual(a.losses)
    expect(weights(b.solver)).toEqual(weights(a.solver))
    expect(c.losses).not.toEqual(a.losses)
  })

  it.each(['SGD', 'Nesterov', 'Adam'])('%s: resuming from a snapshot continues the run exactly', async (type) => {
    const momentum = type === 'Adam' ? 'momentum: 0.9 momentum2: 0.999' : 'momentum: 0.9'
    const common = `type: "${type}" base_lr: 0.02 ${momentum} weight_decay: 0.001 lr_policy: "inv" gamma: 0.01 power: 0.75
      average_loss: 3 display: 5 random_seed: 5`
    const whole = await makeSolver({ body: `${common} max_iter: 30 snapshot: 12 snapshot_prefix: "${prefix(`whole-${type}`)}"` })
    await whole.solver.solve()
    const resumed = await makeSolver({ body: `${common} max_iter: 30 snapshot_prefix: "${prefix(`resumed-${type}`)}"` })
    resumed.solver.restore(`${prefix(`whole-${type}`)}_iter_12.solverstate`)
    expect(resumed.solver.iter).toBe(12)
    await resumed.solver.solve()
    expect(resumed.losses).toEqual(whole.losses.slice(12))
    expect(weights(resumed.solver)).toEqual(weights(whole.solver))
  })

  it('keeps a real-Caffe-readable .solverstate with our resume record in an extra field', async () => {
    const bytes = readFileSync(`${prefix('whole-SGD')}_iter_12.solverstate`)
    const state = decodeSolverState(bytes)
    expect(state.iter).toBe(12)
    const record = readResumeRecord(bytes)
    expect(record?.version).toBe(1)
    expect(record?.rng).toHaveLength(5)
    expect(record?.losses).toHaveLength(3)
  })

  it('iter_size accumulates and normalises: two passes over one batch equal one pass', async () => {
    const body = (n: number): string => `base_lr: 0.05 momentum: 0.9 weight_decay: 0.01 lr_policy: "fixed" max_iter: 6 random_seed: 3 iter_size: ${n}`
    // Without dropout both passes see the same batch and the same gradient, so (g + g) / 2 == g.
    const one = await makeSolver({ body: body(1), dropout: false })
    const two = await makeSolver({ body: body(2), dropout: false })
    const three = await makeSolver({ body: body(1).replace('weight_decay: 0.01', 'weight_decay: 0.02'), dropout: false })
    await one.solver.solve()
    await two.solver.solve()
    await three.solver.solve()
    // Equal up to float rounding: a kernel may fold the accumulation into its GEMM (beta = 1).
    two.losses.forEach((l, i) => expect(l).toBeCloseTo(one.losses[i]!, 6))
    const w1 = weights(one.solver)
    const w2 = weights(two.solver)
    const w3 = weights(three.solver)
    const maxDiff = (a: number[], b: number[]): number => Math.max(...a.map((v, i) => Math.abs(v - (b[i] ?? 0))))
    expect(maxDiff(w2, w1)).toBeLessThan(1e-6)
    expect(maxDiff(w3, w1)).toBeGreaterThan(1e-4)
  })

  it('SIGINT with the default effect stops after the current iteration and snapshots', async () => {
    const signals = new EventEmitter()
    const log = new MemoryLog()
    const after = (iter: number): void => { if (iter === 10) signals.emit('SIGINT') }
    const { solver } = await makeSolver({ log, signals, after, body: `base_lr: 0.01 lr_policy: "fixed" max_iter: 1000 snapshot_prefix: "${prefix('int')}" random_seed: 1` })
    await solver.solve()
    expect(solver.iter).toBe(10)
    expect(log.lines).toContain('I solver.cpp:294] Optimization stopped early.')
    expect(existsSync(`${prefix('int')}_iter_${solver.iter}.caffemodel`)).toBe(true)
  })

  it('SIGINT with effect none is ignored', async () => {
    const signals = new EventEmitter()
    const after = (iter: number): void => { if (iter === 3) signals.emit('SIGINT') }
    const { solver } = await makeSolver({ signals, after, sigint: 'none', body: 'base_lr: 0.01 lr_policy: "fixed" max_iter: 8' })
    await solver.solve()
    expect(solver.iter).toBe(8)
    expect(solver.requestedEarlyExit).toBe(false)
  })

  it('SIGHUP with the default effect snapshots and keeps training', async () => {
    const signals = new EventEmitter()
    const log = new MemoryLog()
    const after = (iter: number): void => { if (iter === 50) signals.emit('SIGHUP') }
    const { solver } = await makeSolver({ log, signals, after, body: `base_lr: 0.01 lr_policy: "fixed" max_iter: 300 snapshot_after_train: false snapshot_prefix: "${prefix('hup')}" random_seed: 1` })
    await solver.solve()
    expect(solver.iter).toBe(300)
    const snaps = log.lines.filter((l) => l.includes('Snapshotting to binary proto file'))
    expect(snaps).toEqual([`I solver.cpp:447] Snapshotting to binary proto file ${prefix('hup')}_iter_50.caffemodel`])
    expect(log.lines[log.lines.length - 1]).toBe('I solver.cpp:315] Optimization Done.')
  })

  it('writes binary protobuf with a warning when HDF5 snapshots are requested', async () => {
    const log = new MemoryLog()
    const { solver } = await makeSolver({ log, body: `base_lr: 0.01 lr_policy: "fixed" max_iter: 2 snapshot_format: HDF5 snapshot_prefix: "${prefix('h5')}"` })
    await solver.solve()
    expect(log.lines.some((l) => l.startsWith('W solver.cpp:414] snapshot_format HDF5 is not supported'))).toBe(true)
    expect(existsSync(`${prefix('h5')}_iter_2.caffemodel`)).toBe(true)
    expect(existsSync(`${prefix('h5')}_iter_2.solverstate`)).toBe(true)
  })

  it('refuses a snapshot prefix it cannot write, with Caffe\'s message', async () => {
    await expect(makeSolver({ body: `base_lr: 0.01 lr_policy: "fixed" max_iter: 2 snapshot: 1 snapshot_prefix: "${join(dir, 'no', 'such', 'dir', 'x')}"` }))
      .rejects.toThrow(new SolverSetupError(`Cannot write to snapshot prefix '${join(dir, 'no', 'such', 'dir', 'x')}'.  Make sure that the directory exists and is writeable.`))
  })

  it('test_compute_loss logs the mean test loss; test_initialization false skips the first test', async () => {
    const log = new MemoryLog()
    const { solver } = await makeSolver({ log, body: 'base_lr: 0.01 lr_policy: "fixed" max_iter: 4 test_iter: 3 test_interval: 2 test_initialization: false test_compute_loss: true snapshot_after_train: false' })
    await solver.solve()
    const tests = log.lines.filter((l) => l.includes('Testing net'))
    expect(tests).toEqual(['I solver.cpp:330] Iteration 2, Testing net (#0)', 'I solver.cpp:330] Iteration 4, Testing net (#0)'])
    expect(log.lines.some((l) => /^I solver\.cpp:384\] Test loss: [\d.e-]+$/.test(l))).toBe(true)
  })
})
