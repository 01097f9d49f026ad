/**
 * Micro-benchmark of the compute core: LeNet (batch 64) built layer by layer, without the Net,
 * timing forward+backward+SGD update and forward alone on each kernel path, with a per-layer
 * breakdown. `npx tsx bench/lenet-step.ts [--paths=ts,blas] [--iters=N] [--batch=N]`
 */
import { Blob } from '../src/engine/blob.js'
import { createKernels } from '../src/engine/kernels/create-kernels.js'
import type { Kernels } from '../src/engine/kernels/kernels.js'
import type { Layer } from '../src/engine/layer.js'
import { createLayer } from '../src/engine/layers/registry.js'
import { createMessage, type LayerParameter } from '../src/engine/proto/caffe.js'
import { Rng } from '../src/engine/random.js'

const args = new Map(process.argv.slice(2).map((a) => {
  const [k, v] = a.replace(/^--/, '').split('=')
  return [k ?? '', v ?? '']
}))
const paths = (args.get('paths') ?? 'ts,blas').split(',') as Array<'ts' | 'blas'>
const batch = Number(args.get('batch') ?? 64)
const xavier = { type: 'xavier' }

function p (init: Record<string, unknown>): LayerParameter {
  return createMessage('LayerParameter', init as Parameters<typeof createMessage<'LayerParameter'>>[1])
}

interface Stage { layer: Layer, bottom: Blob[], top: Blob[], down: boolean[] }

function build (kernels: Kernels, phase: 'TRAIN' | 'TEST'): { stages: Stage[], data: Blob, label: Blob, loss: Blob } {
  const ctx = { kernels, phase, rng: new Rng(1) }
  const data = new Blob([batch, 1, 28, 28])
  const label = new Blob([batch])
  const rng = new Rng(7)
  for (let i = 0; i < data.count; i++) data.data[i] = rng.uniform()
  for (let i = 0; i < batch; i++) label.data[i] = rng.int(10)
  const blobs = { conv1: new Blob(), pool1: new Blob(), conv2: new Blob(), pool2: new Blob(), ip1: new Blob(), ip2: new Blob(), loss: new Blob() }
  const spec: Array<[LayerParameter, Blob[], Blob[], boolean[]]> = [
    [p({ name: 'conv1', type: 'Convolution', convolution_param: { num_output: 20, kernel_size: [5], weight_filler: xavier } }), [data], [blobs.conv1], [false]],
    [p({ name: 'pool1', type: 'Pooling', pooling_param: { pool: 'MAX', kernel_size: 2, stride: 2 } }), [blobs.conv1], [blobs.pool1], [true]],
    [p({ name: 'conv2', type: 'Convolution', convolution_param: { num_output: 50, kernel_size: [5], weight_filler: xavier } }), [blobs.pool1], [blobs.conv2], [true]],
    [p({ name: 'pool2', type: 'Pooling', pooling_param: { pool: 'MAX', kernel_size: 2, stride: 2 } }), [blobs.conv2], [blobs.pool2], [true]],
    [p({ name: 'ip1', type: 'InnerProduct', inner_product_param: { num_output: 500, weight_filler: xavier } }), [blobs.pool2], [blobs.ip1], [true]],
    [p({ name: 'relu1', type: 'ReLU' }), [blobs.ip1], [blobs.ip1], [true]],
    [p({ name: 'ip2', type: 'InnerProduct', inner_product_param: { num_output: 10, weight_filler: xavier } }), [blobs.ip1], [blobs.ip2], [true]]
  ]
  if (phase === 'TRAIN') spec.push([p({ name: 'loss', type: 'SoftmaxWithLoss' }), [blobs.ip2, label], [blobs.loss], [true, false]])
  const stages = spec.map(([param, bottom, top, down]) => {
    const layer = createLayer(param, ctx)
    layer.setUp(bottom, top)
    return { layer, bottom, top, down }
  })
  return { stages, data, label, loss: blobs.loss }
}

/** Process CPU time in ms (all threads): robust to other processes sharing the cores. */
function clock (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

function sgd (stages: Stage[], history: Map<Blob, Float32Array>, lr: number): void {
  for (const s of stages) {
    for (const b of s.layer.blobs) {
      let h = history.get(b)
      if (h === undefined) history.set(b, h = new Float32Array(b.count))
      const d = b.data
      const g = b.diff
      for (let i = 0; i < d.length; i++) {
        const v = 0.9 * h[i]! + lr * (g[i]! + 0.0005 * d[i]!)
        h[i] = v
        d[i] = d[i]! - v
        g[i] = 0
      }
    }
  }
}

function run (kind: 'ts' | 'blas'): void {
  const kernels = createKernels({ kind, threads: args.has('threads') ? Number(args.get('threads')) : undefined })
  const { stages, loss } = build(kernels, 'TRAIN')
  const history = new Map<Blob, Float32Array>()
  const fwd = new Float64Array(stages.length)
  const bwd = new Float64Array(stages.length)
  let upd = 0
  const step = (timed: boolean): void => {
    for (let i = 0; i < stages.length; i++) {
      const s = stages[i]!
      const t = clock()
      s.layer.reshape(s.bottom, s.top)
      s.layer.forward(s.bottom, s.top)
      if (timed) fwd[i]! += clock() - t
    }
    loss.diff[0] = 1
    for (let i = stages.length - 1; i >= 0; i--) {
      const s = stages[i]!
      const t = clock()
      s.layer.backward(s.top, s.down, s.bottom)
      if (timed) bwd[i]! += clock() - t
    }
    const t = clock()
    sgd(stages, history, 0.01)
    if (timed) upd += clock() - t
  }
  const iters = Number(args.get('iters') ?? (kind === 'ts' ? 20 : 200))
  for (let i = 0; i < 3; i++) step(false)
  const first = loss.data[0]!
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  for (let i = 0; i < iters; i++) step(true)
  const ms = (performance.now() - t0) / iters
  const cpu = process.cpuUsage(c0)
  const cpuMs = (cpu.user + cpu.system) / 1000 / iters
  console.log(`${kernels.description}`)
  console.log(`  train: ${ms.toFixed(2)} ms/step  ${(batch * 1000 / ms).toFixed(0)} img/s, cpu ${cpuMs.toFixed(2)} ms/step  (loss ${first.toFixed(3)} -> ${loss.data[0]!.toFixed(3)})`)
  console.log(`  per layer fwd/bwd cpu ms: ${stages.map((s, i) => `${s.layer.name} ${(fwd[i]! / iters).toFixed(2)}/${(bwd[i]! / iters).toFixed(2)}`).join(', ')}; update ${(upd / iters).toFixed(2)}`)
  const test = build(kernels, 'TEST')
  const inferIters = iters * 3
  for (let i = 0; i < 3; i++) for (const s of test.stages) s.layer.forward(s.bottom, s.top)
  const t1 = performance.now()
  const inf = new Float64Array(test.stages.length)
  for (let i = 0; i < inferIters; i++) {
    test.stages.forEach((s, j) => {
      const t = clock()
      s.layer.reshape(s.bottom, s.top)
      s.layer.forward(s.bottom, s.top)
      inf[j]! += clock() - t
    })
  }
  const ims = (performance.now() - t1) / inferIters
  console.log(`  per layer infer cpu ms: ${test.stages.map((s, i) => `${s.layer.name} ${(inf[i]! / inferIters).toFixed(2)}`).join(', ')}`)
  const cpuInf = inf.reduce((a, b) => a + b, 0) / inferIters
  console.log(`  infer: ${ims.toFixed(2)} ms/batch  ${(batch * 1000 / ims).toFixed(0)} img/s, cpu ${cpuInf.toFixed(2)} ms/batch`)
  kernels.close()
}

for (const path of paths) run(path)
