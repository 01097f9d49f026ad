import { describe, it, expect } from 'vitest'
import { createGlogWriter, formatGlogLine } from '../../../src/engine/log/glog.js'
import { parseCaffeLog } from '../../../src/engine/log/caffe-log-parser.js'

describe('glog writer', () => {
  it('formats lines like glog', () => {
    const date = new Date(2026, 10, 21, 1, 52, 33, 123)
    expect(formatGlogLine({ severity: 'I', date, micros: 123456, threadId: 12345, where: 'solver.cpp:218', message: 'hello' }))
      .toBe('I1121 01:52:33.123456 12345 solver.cpp:218] hello')
    expect(formatGlogLine({ severity: 'F', date, micros: 7, threadId: 42, where: 'io.cpp:67', message: 'x' }))
      .toBe('F1121 01:52:33.000007    42 io.cpp:67] x')
  })

  it('takes microseconds from the clock and writes one line per call', () => {
    const lines: string[] = []
    const t = new Date(2026, 0, 2, 3, 4, 5, 678).getTime() + 0.9015
    const log = createGlogWriter((s) => lines.push(s), { threadId: 7, now: () => t })
    log.warning('net.cpp:1', 'w')
    log.error('net.cpp:2', 'e')
    expect(lines).toEqual(['W0102 03:04:05.678901     7 net.cpp:1] w\n', 'E0102 03:04:05.678901     7 net.cpp:2] e\n'])
  })

  it('writes what the log parser reads back', () => {
    let out = ''
    let clock = new Date(2026, 10, 21, 9, 40, 41).getTime()
    const log = createGlogWriter((s) => { out += s }, { threadId: 28430, now: () => (clock += 1.5) })
    log.info('solver.cpp:44', 'Initializing solver from parameters: \nbase_lr: 0.01\nmax_iter: 300\nnet: "n.prototxt"')
    log.info('solver.cpp:272', 'Solving LeNet')
    log.info('solver.cpp:330', 'Iteration 0, Testing net (#0)')
    log.info('solver.cpp:397', '    Test net output #0: accuracy = 0.0912')
    log.info('solver.cpp:397', '    Test net output #1: loss = 2.30447 (* 1 = 2.30447 loss)')
    log.info('solver.cpp:218', 'Iteration 0 (0 iter/s, 0.012s/100 iters), loss = 2.3093')
    log.info('solver.cpp:237', '    Train net output #0: loss = 2.3093 (* 1 = 2.3093 loss)')
    log.info('sgd_solver.cpp:105', 'Iteration 0, lr = 0.01')
    log.info('solver.cpp:447', 'Snapshotting to binary proto file snap/lenet_iter_300.caffemodel')
    log.info('sgd_solver.cpp:273', 'Snapshotting solver state to binary proto file snap/lenet_iter_300.solverstate')
    log.info('solver.cpp:310', 'Iteration 300, loss = 0.25')
    log.info('solver.cpp:315', 'Optimization Done.')
    log.fatal('io.cpp:67', 'Check failed: proto.SerializeToOstream(&output)')
    const { events, summary } = parseCaffeLog(out)
    expect(events.map((e) => e.kind)).toEqual(['max-iter', 'solver-parameters', 'solving', 'test-start', 'test-output', 'test-output', 'train-loss', 'train-output', 'lr', 'snapshot', 'snapshot', 'train-loss', 'done', 'fatal'])
    expect(events[6]).toMatchObject({ kind: 'train-loss', iter: 0, loss: 2.3093, itersPerSecond: 0, secondsPerInterval: 0.012, interval: 100 })
    expect(events[6]?.glog).toMatchObject({ severity: 'I', month: 11, day: 21, threadId: 28430, file: 'solver.cpp', sourceLine: 218 })
    expect(events[1]).toMatchObject({ kind: 'solver-parameters', text: 'base_lr: 0.01\nmax_iter: 300\nnet: "n.prototxt"\n' })
    expect(summary).toMatchObject({
      maxIter: 300,
      iteration: 300,
      lastTest: { iter: 0, net: 0, outputs: { accuracy: 0.0912, loss: 2.30447 } },
      lastModelSnapshot: 'snap/lenet_iter_300.caffemodel',
      lastSolverStateSnapshot: 'snap/lenet_iter_300.solverstate',
      done: true,
      fatal: 'Check failed: proto.SerializeToOstream(&output)'
    })
  })
})
