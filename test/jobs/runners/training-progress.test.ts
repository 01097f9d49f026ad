import { describe, expect, it } from 'vitest'
import { parseCaffeLog } from '../../../src/engine/log/caffe-log-parser.js'
import { ThinnedSeries, TrainingProgress } from '../../../src/jobs/runners/training-progress.js'
import { explainCaffeFailure, netLineMapper } from '../../../src/jobs/runners/caffe-failure.js'

const point = (iteration: number) => ({ iteration, loss: iteration / 10, lr: 0.01, test: null })

describe('ThinnedSeries', () => {
  it('never holds more than its limit, thins old points evenly and always ends with the newest', () => {
    const series = new ThinnedSeries(50)
    for (let i = 0; i <= 10_000; i++) {
      series.add(point(i))
      const points = series.toArray()
      expect(points.length).toBeLessThanOrEqual(50)
      expect(points.at(-1)?.iteration).toBe(i)
    }
    const iterations = series.toArray().map((p) => p.iteration)
    expect(iterations[0]).toBe(0)
    // Every kept point but the newest sits on one stride: evenly spaced over the whole run.
    const gaps = new Set(iterations.slice(1, -1).map((it, k) => it - (iterations[k] ?? 0)))
    expect(gaps.size).toBe(1)
    expect(iterations.length).toBeGreaterThanOrEqual(25)
  })

  it('merges events of one iteration (test outputs, loss, lr) into one point', () => {
    const series = new ThinnedSeries(10)
    series.add({ iteration: 10, loss: null, lr: null, test: { accuracy: 0.5 } })
    series.add({ iteration: 10, loss: null, lr: null, test: { loss: 1.2 } })
    series.add({ iteration: 10, loss: 0.9, lr: null, test: null })
    series.add({ iteration: 10, loss: null, lr: 0.01, test: null })
    expect(series.toArray()).toEqual([{ iteration: 10, loss: 0.9, lr: 0.01, test: { accuracy: 0.5, loss: 1.2 } }])
  })
})

describe('TrainingProgress', () => {
  const log = [
    'I1121 10:00:00.000000  1 solver.cpp:397]     Test net output #0: accuracy = 0.1',
    'I1121 10:00:00.000000  1 solver.cpp:330] Iteration 0, Testing net (#0)',
    'I1121 10:00:00.000000  1 solver.cpp:397]     Test net output #0: accuracy = 0.25',
    'I1121 10:00:00.000000  1 solver.cpp:397]     Test net output #1: loss = 1.38 (* 1 = 1.38 loss)',
    'I1121 10:00:00.000000  1 solver.cpp:218] Iteration 0 (0 iter/s, 0.1s/5 iters), loss = 1.41',
    'I1121 10:00:00.000000  1 sgd_solver.cpp:105] Iteration 0, lr = 0.05',
    'I1121 10:00:00.000000  1 solver.cpp:218] Iteration 5 (50 iter/s, 0.1s/5 iters), loss = nan',
    ''
  ].join('\n')

  it('folds loss, lr and test outputs into the document shape; NaN is stored as null', () => {
    const progress = new TrainingProgress({ maxIter: 30 })
    for (const e of parseCaffeLog(log).events) progress.apply(e)
    expect(progress.toJSON()).toEqual({
      iteration: 5,
      'max-iter': 30,
      loss: null,
      lr: 0.05,
      'test-outputs': { accuracy: 0.25, loss: 1.38 },
      series: [
        { iteration: 0, loss: 1.41, lr: 0.05, test: { accuracy: 0.25, loss: 1.38 } },
        { iteration: 5, loss: null, lr: null, test: null }
      ]
    })
    expect(progress.takeChanged()).toBe(true)
    expect(progress.takeChanged()).toBe(false)
  })

  it('a resumed run keeps the earlier points before its snapshot and drops the ones it will log again', () => {
    const previous = { iteration: 27, 'max-iter': 40, loss: 0.5, lr: 0.04, 'test-outputs': {}, series: [0, 5, 10, 15, 20, 25].map(point) }
    const progress = new TrainingProgress({ maxIter: 40, previous, resumeIteration: 20 })
    expect(progress.toJSON().series.map((p) => p.iteration)).toEqual([0, 5, 10, 15])
    expect(progress.iteration).toBe(20)
    expect(progress.toJSON().loss).toBe(1.5)
  })
})

describe('explainCaffeFailure', () => {
  const ctx = { what: 'training', workDir: '/tmp/w1', files: { 'solver-net.prototxt': { label: 'the net prototxt', userLine: (l: number) => l + 100 } } }

  it('says which unsupported layer type and where, for real Caffe too', () => {
    expect(explainCaffeFailure({ code: 134, signal: null, tail: [], fatal: 'Check failed: registry.count(type) == 1 (0 vs. 1) Unknown layer type: Deconvolution (known types: Convolution)' }, ctx))
      .toBe("training failed: the net prototxt refers to layer type 'Deconvolution', which is not supported")
  })

  it('names work-dir files as the user knows them, with their own line numbers', () => {
    expect(explainCaffeFailure({ code: 1, signal: null, tail: [], fatal: 'solver-net.prototxt:12: layer "d" (ImageData): /tmp/w1/training.txt: cannot open list file' }, ctx))
      .toBe('training failed: the net prototxt (line 112): layer "d" (ImageData): training.txt: cannot open list file')
  })

  it('without an F line: the last line that is not informational, or how the process died', () => {
    expect(explainCaffeFailure({ code: 1, signal: null, fatal: undefined, tail: ['ERROR: unknown command line flag \'bogus\'', 'I1121 10:00:00.000000  1 x.cpp:1] info'] }, ctx))
      .toBe("training failed: Caffe exited with code 1: ERROR: unknown command line flag 'bogus'")
    expect(explainCaffeFailure({ code: null, signal: 'SIGKILL', fatal: undefined, tail: ['I1121 10:00:00.000000  1 x.cpp:1] info'] }, ctx))
      .toBe('training failed: Caffe was killed by SIGKILL (out of memory, or stopped by someone)')
  })

  it('maps a line of the rewritten net to the start line of the same layer in the user\'s file', () => {
    const rewritten = 'name: "x"\nlayer {\n  name: "a"\n}\nlayer {\n  name: "b"\n  type: "T"\n}\n'
    const map = netLineMapper(rewritten, [4, 30])
    expect([1, 2, 4, 5, 7].map(map)).toEqual([undefined, 4, 4, 30, 30])
  })
})
