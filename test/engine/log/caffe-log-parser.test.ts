import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseCaffeLog, createCaffeLogParser, parseCxxNumber, type CaffeLogEvent } from '../../../src/engine/log/caffe-log-parser.js'
import { parseSolverPrototxt } from '../../../src/engine/proto/text-format.js'

const logs = join(import.meta.dirname, '../../../../shared/fixtures/caffe-logs')
const read = (f: string): string => readFileSync(join(logs, f), 'utf8')

function countKinds (events: CaffeLogEvent[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const e of events) out[e.kind] = (out[e.kind] ?? 0) + 1
  return out
}

function only<K extends CaffeLogEvent['kind']> (events: CaffeLogEvent[], kind: K): Array<Extract<CaffeLogEvent, { kind: K }>> {
  return events.filter((e): e is Extract<CaffeLogEvent, { kind: K }> => e.kind === kind)
}

// Expected counts were taken from the files with grep (e.g. grep -c 'Test net output #').
describe('genuine Caffe logs', () => {
  it('cpu.err: Caffe 1.0 CPU run with iter/s loss lines and prefetch lines from another thread', () => {
    const { events, summary } = parseCaffeLog(read('cpu.err'))
    expect(countKinds(events)).toEqual({ 'max-iter': 1, 'solver-parameters': 1, solving: 1, 'test-start': 21, 'test-output': 42, 'train-loss': 101, 'train-output': 100, lr: 100, snapshot: 4, done: 2 })
    const losses = only(events, 'train-loss')
    expect(losses[0]).toMatchObject({ iter: 0, loss: 2.36203, itersPerSecond: 0, secondsPerInterval: 2.643, interval: 100 })
    expect(losses[1]).toMatchObject({ iter: 100, loss: 0.260325, itersPerSecond: 29.1715, secondsPerInterval: 3.428, interval: 100 })
    expect(losses.at(-1)).toMatchObject({ iter: 10000, loss: 0.00377547 })
    expect(losses.at(-1)?.itersPerSecond).toBeUndefined()
    expect(losses[0]?.glog).toEqual({ severity: 'I', month: 11, day: 3, time: '09:40:44.661031', threadId: 28430, file: 'solver.cpp', sourceLine: 218 })
    expect(summary.lastTest).toEqual({ iter: 10000, net: 0, outputs: { accuracy: 0.9906, loss: 0.0287233 } })
    expect(only(events, 'test-output').at(-1)).toMatchObject({ iter: 10000, net: 0, index: 1, name: 'loss', value: 0.0287233, lossWeight: 1, weightedLoss: 0.0287233 })
    expect(only(events, 'snapshot').map((s) => [s.what, s.format, s.path])).toEqual([
      ['model', 'binaryproto', 'lenet_iter_5000.caffemodel'],
      ['solverstate', 'binaryproto', 'lenet_iter_5000.solverstate'],
      ['model', 'binaryproto', 'lenet_iter_10000.caffemodel'],
      ['solverstate', 'binaryproto', 'lenet_iter_10000.solverstate']
    ])
    expect(summary).toMatchObject({ maxIter: 10000, iteration: 10000, done: true, fatal: undefined, trainLossCount: 101, testPasses: 21 })
    const solver = parseSolverPrototxt(only(events, 'solver-parameters')[0]?.text ?? '')
    expect(solver.net).toBe('lenet_train_test.prototxt')
    expect(solver.solver_mode).toBe('CPU')
  })

  it('complete-lenet_train.log: a full pre-1.0 GPU run', () => {
    const { events, summary } = parseCaffeLog(read('complete-lenet_train.log'))
    expect(countKinds(events)).toEqual({ 'max-iter': 1, 'solver-parameters': 1, solving: 1, 'test-start': 21, 'test-output': 42, 'train-loss': 101, 'train-output': 100, lr: 100, snapshot: 4, done: 2 })
    expect(summary.lastTest?.outputs).toEqual({ accuracy: 0.9906, loss: 0.026951 })
    expect(summary.lastLoss).toEqual({ iter: 10000, loss: 0.00313682 })
    expect(summary.lastLr).toEqual({ iter: 9900, lr: 0.00596843 })
    expect(only(events, 'train-output')[0]).toMatchObject({ iter: 0, index: 0, name: 'loss', lossWeight: 1 })
    expect(summary.lastModelSnapshot).toBe('examples/mnist/lenet_iter_10000.caffemodel')
  })

  it('interrupted-lenet_train.log: stops at iteration 9200 without Optimization Done', () => {
    const { events, summary } = parseCaffeLog(read('interrupted-lenet_train.log'))
    expect(countKinds(events)).toEqual({ 'max-iter': 1, 'solver-parameters': 1, solving: 1, 'test-start': 19, 'test-output': 38, 'train-loss': 93, 'train-output': 93, lr: 93, snapshot: 2 })
    expect(summary).toMatchObject({ done: false, fatal: undefined, iteration: 9200, maxIter: 10000 })
    expect(summary.lastLr).toEqual({ iter: 9200, lr: 0.0061309 })
    expect(summary.lastTest).toEqual({ iter: 9000, net: 0, outputs: { accuracy: 0.9892, loss: 0.0309362 } })
  })

  it('failed-lenet_train.log: a fatal line followed by a stack trace', () => {
    const { events, summary } = parseCaffeLog(read('failed-lenet_train.log'))
    expect(countKinds(events)).toEqual({ 'max-iter': 1, 'solver-parameters': 1, fatal: 1 })
    const fatal = only(events, 'fatal')[0]
    expect(fatal).toMatchObject({ message: "Cannot write to snapshot prefix 'examples/mnist/lenet'.  Make sure that the directory exists and is writeable.", checkFailed: false, lineNo: 23 })
    expect(fatal?.glog).toMatchObject({ severity: 'F', file: 'solver.cpp', sourceLine: 438, threadId: 31373 })
    expect(summary.done).toBe(false)
    expect(summary.fatal).toBe(fatal?.message)
    // the solver dump stops at the F line and does not swallow it
    expect(only(events, 'solver-parameters')[0]?.text.trimEnd().split('\n').at(-1)).toBe('}')
  })

  it('caffe_train_HingeLoss.log: Windows, CRLF, 3-digit exponents, no test passes', () => {
    const text = read('caffe_train_HingeLoss.log')
    expect(text.includes('\r\n')).toBe(true)
    const { events, summary } = parseCaffeLog(text)
    expect(countKinds(events)).toEqual({ 'max-iter': 1, 'solver-parameters': 1, solving: 1, 'train-loss': 101, 'train-output': 100, lr: 100, snapshot: 4, done: 2 })
    expect(summary.lastLoss).toEqual({ iter: 10000, loss: 3.7346e-7 })
    expect(summary.testPasses).toBe(0)
    expect(only(events, 'snapshot').map((s) => s.path)).toContain('../../../examples/mnist/lenet_iter_10000.caffemodel')
    expect(only(events, 'snapshot').every((s) => !s.path.endsWith('\r'))).toBe(true)
  })

  it('cifar-lr1.log: resumed run with debug prefetch lines', () => {
    const { events, summary } = parseCaffeLog(read('cifar-lr1.log'))
    expect(countKinds(events)).toEqual({ 'max-iter': 1, 'solver-parameters': 1, resume: 2, solving: 1, 'test-start': 3, 'test-output': 6, 'train-loss': 11, 'train-output': 10, lr: 10, snapshot: 2, done: 2 })
    expect(only(events, 'resume').map((r) => [r.by, r.path])).toEqual([
      ['caffe', 'examples/cifar10/cifar10_quick_iter_4000.solverstate'],
      ['solver', 'examples/cifar10/cifar10_quick_iter_4000.solverstate']
    ])
    expect(only(events, 'test-start').map((t) => t.iter)).toEqual([4000, 4500, 5000])
    expect(summary.lastTest?.outputs.accuracy).toBe(0.7703)
    expect(summary.maxIter).toBe(5000)
  })

  it('GoogLeNet glog file: header lines, weighted loss outputs, 9 test outputs per pass', () => {
    const { events, summary } = parseCaffeLog(read('caffe.jin-PC.jin.log.INFO.20150701-205606.29064'))
    expect(countKinds(events)).toEqual({ 'max-iter': 1, 'solver-parameters': 1, solving: 1, 'train-loss': 361, 'train-output': 1080, lr: 360, 'test-start': 120, 'test-output': 1080, snapshot: 60, done: 2 })
    const first = only(events, 'train-output')[0]
    expect(first).toMatchObject({ iter: 0, index: 0, name: 'loss1/loss1', value: 9.89395, lossWeight: 0.3, weightedLoss: 2.96819 })
    expect(only(events, 'test-output')[1]).toMatchObject({ index: 1, name: 'loss1/top-1', value: 0.009, lossWeight: undefined })
    expect(Object.keys(summary.lastTest?.outputs ?? {}).length).toBe(9)
    expect(summary.lastTest?.outputs['loss3/top-5']).toBe(0.507)
    expect(only(events, 'snapshot')[0]).toMatchObject({ what: 'model', format: undefined, path: 'models/bvlc_googlenet/result_scratch_0701/bvlc_googlenet_quick_iter_480.caffemodel' })
    expect(only(events, 'snapshot')[1]).toMatchObject({ what: 'solverstate', format: undefined })
    expect(summary).toMatchObject({ maxIter: 14400, iteration: 14400, done: true })
  })

  it('failed GoogLeNet glog file: the Check failed line is the last line', () => {
    const { events, summary } = parseCaffeLog(read('caffe.jin-PC.jin.log.INFO.20150703-174731.17041'))
    expect(countKinds(events)).toEqual({ 'max-iter': 1, 'solver-parameters': 1, solving: 1, 'train-loss': 12, 'train-output': 36, lr: 12, 'test-start': 1, 'test-output': 9, snapshot: 1, fatal: 1 })
    expect(only(events, 'fatal')[0]).toMatchObject({ message: 'Check failed: proto.SerializeToOstream(&output)', checkFailed: true })
    expect(summary).toMatchObject({ maxIter: 48000, iteration: 440, done: false, lastSolverStateSnapshot: undefined })
  })

  it('gives the same events whatever the chunking, for strings and bytes', () => {
    for (const f of ['caffe_train_HingeLoss.log', 'cpu.err', 'failed-lenet_train.log']) {
      const text = read(f)
      const whole = parseCaffeLog(text).events
      const bytes = new TextEncoder().encode(text)
      let seed = 99
      for (const asBytes of [false, true]) {
        const p = createCaffeLogParser()
        const events: CaffeLogEvent[] = []
        for (let at = 0; at < bytes.length;) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff
          const n = 1 + (seed % 97)
          events.push(...p.push(asBytes ? bytes.subarray(at, at + n) : text.slice(at, at + n)))
          at += n
        }
        events.push(...p.end())
        expect(events, f).toEqual(whole)
      }
    }
  })

  it('splits a UTF-8 sequence across byte chunks safely', () => {
    const line = new TextEncoder().encode('I0101 00:00:00.000000  1 solver.cpp:1] Snapshotting to binary proto file /tmp/é.caffemodel\n')
    const p = createCaffeLogParser()
    const cut = line.indexOf(0xc3) + 1
    expect([...p.push(line.subarray(0, cut)), ...p.push(line.subarray(cut)), ...p.end()]).toMatchObject([{ kind: 'snapshot', path: '/tmp/é.caffemodel' }])
  })
})

describe('parseCxxNumber', () => {
  it('reads the spellings C++ streams produce on Linux and Windows', () => {
    expect(parseCxxNumber('3.7346e-007')).toBe(3.7346e-7)
    expect(parseCxxNumber('1e+06')).toBe(1e6)
    expect(parseCxxNumber('-nan')).toBeNaN()
    expect(parseCxxNumber('nan')).toBeNaN()
    expect(parseCxxNumber('inf')).toBe(Infinity)
    expect(parseCxxNumber('-inf')).toBe(-Infinity)
    expect(parseCxxNumber('1.#QNAN')).toBeNaN()
    expect(parseCxxNumber('-1.#IND')).toBeNaN()
    expect(parseCxxNumber('1.#INF')).toBe(Infinity)
  })

  it('parses a diverged run whose loss is nan', () => {
    const { events } = parseCaffeLog('I0101 00:00:00.000000 1 solver.cpp:218] Iteration 100 (1.5 iter/s, 66.7s/100 iters), loss = -nan\nI0101 00:00:00.000000 1 solver.cpp:237]     Train net output #0: loss = 1.#QNAN (* 1 = 1.#QNAN loss)')
    expect(events.map((e) => e.kind)).toEqual(['train-loss', 'train-output'])
    expect(only(events, 'train-loss')[0]?.loss).toBeNaN()
    expect(only(events, 'train-output')[0]?.weightedLoss).toBeNaN()
  })
})
