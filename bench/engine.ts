/**
 * `npm run bench:engine`: LeNet (batch 64) training and inference throughput of the builtin
 * engine on each kernel path, beside a naive triple-loop baseline measured in the same run,
 * plus the process's peak memory. Data comes from Input layers filled with random pixels, so
 * the figures are the compute engine's own (the MNIST script measures the whole pipeline).
 *
 * Flags: --quick (fewer iterations), --paths=naive,ts,blas (which paths to run).
 */
import { availableParallelism } from 'node:os'
import { BlasUnavailableError } from '../src/engine/kernels/blas-kernels.js'
import { createKernels } from '../src/engine/kernels/create-kernels.js'
import type { Kernels } from '../src/engine/kernels/kernels.js'
import { createLayer } from '../src/engine/layers/registry.js'
import { Net } from '../src/engine/net.js'
import { parseNetPrototxt } from '../src/engine/proto/text-format.js'
import { Rng } from '../src/engine/random.js'
import { ParamUpdater } from '../src/engine/solver/param-updater.js'
import { NaiveKernels } from './naive-kernels.js'

const BATCH = 64

const lenetBody = `
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 20 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 50 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1" param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
`

const TRAIN_NET = `name: "LeNet"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: ${BATCH} dim: 1 dim: 28 dim: 28 } shape { dim: ${BATCH} } } }
${lenetBody}
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
`

const DEPLOY_NET = `name: "LeNet"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: ${BATCH} dim: 1 dim: 28 dim: 28 } } }
${lenetBody}
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
`

interface PathResult { path: string, description: string, trainImgPerS: number, inferImgPerS: number, finalLoss: number }

async function buildNet (text: string, kernels: Kernels, phase: 'TRAIN' | 'TEST'): Promise<Net> {
  return Net.create(parseNetPrototxt(text), { kernels, createLayer, rng: new Rng(1), state: { phase } })
}

function fillInputs (net: Net, rng: Rng): void {
  const data = net.blobByName('data')
  const label = net.blobByName('label')
  if (data !== undefined) for (let i = 0; i < data.count; i++) data.data[i] = rng.uniform()
  if (label !== undefined) for (let i = 0; i < label.count; i++) label.data[i] = rng.int(10)
}

async function measure (path: string, kernels: Kernels, trainIters: number, inferIters: number): Promise<PathResult> {
  const rng = new Rng(7)
  const train = await buildNet(TRAIN_NET, kernels, 'TRAIN')
  fillInputs(train, rng)
  // The LeNet solver's update rule, so the update's cost is part of the figure as in a real run.
  const updater = new ParamUpdater('SGD', {
    momentum: 0.9, momentum2: 0.999, delta: 1e-8, rmsDecay: 0.99, weightDecay: 0.0005, regularizationType: 'L2', clipGradients: -1, iterSize: 1
  }, train.learnableParams)
  const step = async (): Promise<number> => {
    train.clearParamDiffs()
    const loss = await train.forwardBackward()
    updater.apply(0.01, 0)
    return loss
  }
  await step()
  let loss = 0
  let t0 = performance.now()
  for (let i = 0; i < trainIters; i++) loss = await step()
  const trainSeconds = (performance.now() - t0) / 1000

  const deploy = await buildNet(DEPLOY_NET, kernels, 'TEST')
  fillInputs(deploy, rng)
  await deploy.forward()
  t0 = performance.now()
  for (let i = 0; i < inferIters; i++) await deploy.forward()
  const inferSeconds = (performance.now() - t0) / 1000
  await train.close()
  await deploy.close()
  return {
    path,
    description: kernels.description,
    trainImgPerS: (BATCH * trainIters) / trainSeconds,
    inferImgPerS: (BATCH * inferIters) / inferSeconds,
    finalLoss: loss
  }
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick')
  const pathsArg = args.find((a) => a.startsWith('--paths='))?.slice('--paths='.length)
  const paths = (pathsArg ?? 'naive,ts,blas').split(',')
  const threads = availableParallelism()
  const out = (s: string): void => { process.stdout.write(`${s}\n`) }
  out(`LeNet batch ${BATCH}, ${threads} cores, Node ${process.version}${quick ? ' (quick)' : ''}`)
  const results: PathResult[] = []
  for (const path of paths) {
    let kernels: Kernels
    let iters: [number, number]
    if (path === 'naive') {
      kernels = new NaiveKernels()
      iters = quick ? [1, 2] : [3, 5]
    } else if (path === 'ts' || path === 'blas') {
      try {
        kernels = createKernels({ kind: path, threads })
      } catch (err) {
        if (err instanceof BlasUnavailableError) {
          out(`${path}: unavailable (${err.message})`)
          continue
        }
        throw err
      }
      iters = path === 'ts' ? (quick ? [5, 10] : [20, 40]) : (quick ? [30, 100] : [200, 500])
    } else {
      throw new Error(`unknown path ${path} (use naive, ts, blas)`)
    }
    try {
      const r = await measure(path, kernels, iters[0], iters[1])
      results.push(r)
      out(`${path.padEnd(6)} train ${r.trainImgPerS.toFixed(0).padStart(7)} img/s   inference ${r.inferImgPerS.toFixed(0).padStart(7)} img/s   loss ${r.finalLoss.toFixed(4)}   [${r.description}]`)
    } finally {
      kernels.close()
    }
  }
  const peakMiB = process.resourceUsage().maxRSS / 1024
  out(`peak RSS ${peakMiB.toFixed(0)} MiB`)
  const naive = results.find((r) => r.path === 'naive')
  out('')
  out('| path | train img/s | inference img/s | vs naive (train) |')
  out('| --- | ---: | ---: | ---: |')
  for (const r of results) {
    const speedup = naive === undefined ? '' : `${(r.trainImgPerS / naive.trainImgPerS).toFixed(1)}×`
    out(`| ${r.path} | ${r.trainImgPerS.toFixed(0)} | ${r.inferImgPerS.toFixed(0)} | ${speedup} |`)
  }
  const target = (ok: boolean): string => ok ? 'met' : 'NOT met'
  const blas = results.find((r) => r.path === 'blas')
  const ts = results.find((r) => r.path === 'ts')
  out('')
  if (blas !== undefined) out(`target train ≥ 2000 img/s (blas): ${target(blas.trainImgPerS >= 2000)}`)
  if (ts !== undefined) out(`target train ≥ 150 img/s (ts): ${target(ts.trainImgPerS >= 150)}`)
  const bestInfer = Math.max(0, ...results.filter((r) => r.path !== 'naive').map((r) => r.inferImgPerS))
  out(`target inference ≥ 10000 img/s: ${target(bestInfer >= 10000)}`)
  out(`target peak memory < 1 GiB: ${target(peakMiB < 1024)}`)
}

await main()
