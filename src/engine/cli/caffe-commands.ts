import { availableParallelism, cpus, totalmem } from 'node:os'
import { Net } from '../net.js'
import { createMessage, type NetState } from '../proto/caffe.js'
import { printTextFormat } from '../proto/text-format.js'
import { Rng } from '../random.js'
import { formatCxx } from '../solver/format-number.js'
import { createFileSolverIo, readCaffemodel, readNetPrototxt, readSolverPrototxt } from '../solver/file-solver-io.js'
import { SignalHandler, parseSignalEffect } from '../solver/signal-handler.js'
import { Solver } from '../solver/solver.js'
import { check, CaffeFatalError } from './fatal.js'
import { int, str, type FlagSpecs, type FlagValues } from './flags.js'
import { createRuntime, type CliIo, type EngineRuntime } from './runtime.js'

/** Flags of caffe.cpp (same names, types and defaults) plus our kernel selection. */
export const CAFFE_FLAGS: FlagSpecs = {
  gpu: { type: 'string', default: '', help: "Optional; run in GPU mode on given device IDs separated by ','. Accepted and ignored: this engine runs on the CPU." },
  solver: { type: 'string', default: '', help: 'The solver definition protocol buffer text file.' },
  model: { type: 'string', default: '', help: 'The model definition protocol buffer text file.' },
  phase: { type: 'string', default: '', help: "Optional; network phase (TRAIN or TEST). Only used for 'time'." },
  level: { type: 'int32', default: 0, help: 'Optional; network level.' },
  stage: { type: 'string', default: '', help: "Optional; network stages (not to be confused with phase), separated by ','." },
  snapshot: { type: 'string', default: '', help: 'Optional; the snapshot solver state to resume training.' },
  weights: { type: 'string', default: '', help: "Optional; the pretrained weights to initialize finetuning, separated by ','. Cannot be set simultaneously with snapshot." },
  iterations: { type: 'int32', default: 50, help: 'The number of iterations to run.' },
  sigint_effect: { type: 'string', default: 'stop', help: 'Optional; action to take when a SIGINT signal is received: snapshot, stop or none.' },
  sighup_effect: { type: 'string', default: 'snapshot', help: 'Optional; action to take when a SIGHUP signal is received: snapshot, stop or none.' },
  kernels: { type: 'string', default: 'auto', help: 'Numeric kernels: auto (BLAS when OpenBLAS loads), ts (portable) or blas.' },
  threads: { type: 'int32', default: 0, help: 'Threads for the kernels; 0 = every core.' }
}

/** The --gpu value Caffe would use: the flag, else device_id when the solver asks for GPU mode. */
function gpuRequest (flags: FlagValues, solverMode?: string, deviceId?: number): string {
  const gpu = str(flags, 'gpu')
  if (gpu === '' && solverMode === 'GPU') return String(deviceId ?? 0)
  return gpu
}

/** Logs the device line: always CPU here, with a warning when a GPU was asked for. */
function announceDevice (io: CliIo, runtime: EngineRuntime, gpu: string, where: string): void {
  if (gpu !== '') io.log.warning(where, `GPU ${gpu} requested (--gpu or solver_mode: GPU); this engine runs on the CPU only, so the request is ignored.`)
  io.log.info(where, 'Use CPU.')
  io.log.info(where, `Kernels: ${runtime.kernels.description}`)
}

function stagesOf (flags: FlagValues): string[] {
  // boost::split on an empty string yields one empty stage, which Caffe then prints; keep that.
  return str(flags, 'stage').split(',')
}

const printNet = (p: Parameters<typeof printTextFormat<'NetParameter'>>[1]): string => printTextFormat('NetParameter', p)

/** `train`: Caffe's train() — solve from scratch, resume from --snapshot, or fine-tune from --weights. */
export async function train (flags: FlagValues, io: CliIo): Promise<number> {
  const solverFile = str(flags, 'solver')
  check(solverFile.length > 0, 'caffe.cpp:181', 'Check failed: FLAGS_solver.size() > 0 (0 vs. 0) Need a solver definition to train.')
  const snapshot = str(flags, 'snapshot')
  const weights = str(flags, 'weights')
  check(snapshot === '' || weights === '', 'caffe.cpp:182', 'Check failed: !FLAGS_snapshot.size() || !FLAGS_weights.size() Give a snapshot to resume training or weights to finetune but not both.')
  const param = readSolverPrototxt(solverFile, io.log)
  // --level and --stage join the solver's own train_state, exactly as caffe.cpp merges them.
  const trainState: NetState = param.train_state ?? createMessage('NetState')
  trainState.level = int(flags, 'level')
  trainState.stage.push(...stagesOf(flags))
  param.train_state = trainState
  const runtime = createRuntime(str(flags, 'kernels'), int(flags, 'threads'))
  const signals = new SignalHandler(io.signals, parseSignalEffect(str(flags, 'sigint_effect')), parseSignalEffect(str(flags, 'sighup_effect')))
  let solver: Solver | undefined
  try {
    announceDevice(io, runtime, gpuRequest(flags, param.solver_mode, param.device_id), 'caffe.cpp:211')
    signals.install()
    solver = await Solver.create(param, {
      kernels: runtime.kernels,
      createLayer: runtime.createLayer,
      io: createFileSolverIo(io.log),
      log: io.log,
      action: signals.check,
      printSolver: (p) => printTextFormat('SolverParameter', p),
      printNet
    })
    if (snapshot !== '') {
      // Caffe 1.0's CLI restores before Solve() (not through Solve(resume_file)), so the log has
      // "Resuming from" here and no "Restoring previous solver status" line.
      io.log.info('caffe.cpp:242', `Resuming from ${snapshot}`)
      solver.restore(snapshot)
    } else {
      // Newer Caffe also reads `weights` from the solver file; both lists are applied in order.
      const models = [...param.weights, ...(weights === '' ? [] : weights.split(','))]
      for (const model of models) {
        io.log.info('caffe.cpp:155', `Finetuning from ${model}`)
        solver.copyWeights(readCaffemodel(model, io.log))
      }
    }
    io.log.info('caffe.cpp:248', 'Starting Optimization')
    await solver.solve()
    io.log.info('caffe.cpp:259', 'Optimization Done.')
    return 0
  } finally {
    // Data layers hold database handles and background loads; kernels may hold worker threads.
    signals.uninstall()
    await solver?.close()
    runtime.kernels.close()
  }
}

async function buildNet (flags: FlagValues, io: CliIo, runtime: EngineRuntime, phase: 'TRAIN' | 'TEST'): Promise<Net> {
  const loaded = readNetPrototxt(str(flags, 'model'), io.log)
  const state = createMessage('NetState', { phase, level: int(flags, 'level'), stage: stagesOf(flags) })
  return await Net.create(loaded.net, {
    kernels: runtime.kernels,
    createLayer: runtime.createLayer,
    // Scoring and timing draw no random numbers that matter (weights are loaded or irrelevant); a
    // fixed seed keeps repeated runs identical.
    rng: new Rng(1701),
    log: io.log,
    state,
    locate: loaded.locate,
    printNet
  })
}

/** `test`: Caffe's test() — forward --iterations batches with --weights and average each output. */
export async function test (flags: FlagValues, io: CliIo): Promise<number> {
  check(str(flags, 'model').length > 0, 'caffe.cpp:267', 'Check failed: FLAGS_model.size() > 0 (0 vs. 0) Need a model definition to score.')
  check(str(flags, 'weights').length > 0, 'caffe.cpp:268', 'Check failed: FLAGS_weights.size() > 0 (0 vs. 0) Need model weights to score.')
  const runtime = createRuntime(str(flags, 'kernels'), int(flags, 'threads'))
  let net: Net | undefined
  try {
    announceDevice(io, runtime, str(flags, 'gpu'), 'caffe.cpp:284')
    net = await buildNet(flags, io, runtime, 'TEST')
    net.copyTrainedLayersFrom(readCaffemodel(str(flags, 'weights'), io.log))
    const iterations = int(flags, 'iterations')
    io.log.info('caffe.cpp:290', `Running for ${iterations} iterations.`)
    const scores: number[] = []
    const outputOf: number[] = []
    let loss = 0
    // Caffe's test() keeps one running sum per output element, in float, and prints each batch.
    for (let i = 0; i < iterations; i++) {
      loss += await net.forward()
      let idx = 0
      net.outputBlobIndices.forEach((blobId, j) => {
        const blob = net?.blobs[blobId]
        const name = net?.blobNames[blobId] ?? ''
        for (let k = 0; k < (blob?.count ?? 0); k++, idx++) {
          const score = blob?.data[k] ?? 0
          if (i === 0) {
            scores.push(score)
            outputOf.push(j)
          } else {
            scores[idx] = Math.fround((scores[idx] ?? 0) + score)
          }
          io.log.info('caffe.cpp:313', `Batch ${i}, ${name} = ${formatCxx(score)}`)
        }
      })
    }
    io.log.info('caffe.cpp:318', `Loss: ${formatCxx(Math.fround(loss / iterations))}`)
    scores.forEach((total, i) => {
      const blobId = net?.outputBlobIndices[outputOf[i] ?? 0] ?? 0
      const name = net?.blobNames[blobId] ?? ''
      const w = net?.blobLossWeights[blobId] ?? 0
      const mean = Math.fround(total / iterations)
      const note = w !== 0 ? ` (* ${formatCxx(w)} = ${formatCxx(Math.fround(w * mean))} loss)` : ''
      io.log.info('caffe.cpp:330', `${name} = ${formatCxx(mean)}${note}`)
    })
    return 0
  } finally {
    await net?.close()
    runtime.kernels.close()
  }
}

/** `time`: Caffe's time() — per-layer forward/backward timings over --iterations passes. */
export async function time (flags: FlagValues, io: CliIo): Promise<number> {
  check(str(flags, 'model').length > 0, 'caffe.cpp:340', 'Check failed: FLAGS_model.size() > 0 (0 vs. 0) Need a model definition to time.')
  const phaseFlag = str(flags, 'phase')
  if (phaseFlag !== '' && phaseFlag !== 'TRAIN' && phaseFlag !== 'TEST') throw new CaffeFatalError('caffe.cpp:119', 'phase must be "TRAIN" or "TEST"')
  const phase = phaseFlag === 'TEST' ? 'TEST' : 'TRAIN'
  const runtime = createRuntime(str(flags, 'kernels'), int(flags, 'threads'))
  let net: Net | undefined
  try {
    announceDevice(io, runtime, str(flags, 'gpu'), 'caffe.cpp:352')
    net = await buildNet(flags, io, runtime, phase)
    // One untimed pass first, as Caffe does, so allocations and lazy set-up stay out of the figures.
    io.log.info('caffe.cpp:360', 'Performing Forward')
    const initialLoss = await net.forward()
    io.log.info('caffe.cpp:365', `Initial loss: ${formatCxx(initialLoss)}`)
    io.log.info('caffe.cpp:366', 'Performing Backward')
    net.backward()
    const n = net.layers.length
    const fwd = new Array<number>(n).fill(0)
    const bwd = new Array<number>(n).fill(0)
    let forwardTime = 0
    let backwardTime = 0
    const iterations = int(flags, 'iterations')
    io.log.info('caffe.cpp:374', '*** Benchmark begins ***')
    io.log.info('caffe.cpp:375', `Testing for ${iterations} iterations.`)
    const total = performance.now()
    for (let j = 0; j < iterations; j++) {
      const iterStart = performance.now()
      let t0 = performance.now()
      for (let i = 0; i < n; i++) {
        const t = performance.now()
        await net.forwardLayer(i)
        fwd[i] = (fwd[i] ?? 0) + (performance.now() - t)
      }
      forwardTime += performance.now() - t0
      t0 = performance.now()
      for (let i = n - 1; i >= 0; i--) {
        const t = performance.now()
        net.backwardLayer(i)
        bwd[i] = (bwd[i] ?? 0) + (performance.now() - t)
      }
      backwardTime += performance.now() - t0
      io.log.info('caffe.cpp:403', `Iteration: ${j + 1} forward-backward time: ${Math.round(performance.now() - iterStart)} ms.`)
    }
    io.log.info('caffe.cpp:406', 'Average time per layer: ')
    net.layerNames.forEach((name, i) => {
      io.log.info('caffe.cpp:409', `${name.padStart(10)}\tforward: ${formatCxx((fwd[i] ?? 0) / iterations)} ms.`)
      io.log.info('caffe.cpp:412', `${name.padStart(10)}\tbackward: ${formatCxx((bwd[i] ?? 0) / iterations)} ms.`)
    })
    const totalMs = performance.now() - total
    io.log.info('caffe.cpp:417', `Average Forward pass: ${formatCxx(forwardTime / iterations)} ms.`)
    io.log.info('caffe.cpp:419', `Average Backward pass: ${formatCxx(backwardTime / iterations)} ms.`)
    io.log.info('caffe.cpp:421', `Average Forward-Backward: ${formatCxx(totalMs / iterations)} ms.`)
    io.log.info('caffe.cpp:423', `Total Time: ${formatCxx(totalMs)} ms.`)
    io.log.info('caffe.cpp:424', '*** Benchmark ends ***')
    return 0
  } finally {
    await net?.close()
    runtime.kernels.close()
  }
}

/** `device_query`: there is no GPU to query; report the CPU and the kernel path instead. */
export function deviceQuery (flags: FlagValues, io: CliIo): number {
  io.log.info('caffe.cpp:138', `Querying GPUs ${str(flags, 'gpu')}`)
  const runtime = createRuntime(str(flags, 'kernels'), int(flags, 'threads'))
  try {
    const cpu = cpus()[0]?.model ?? 'unknown CPU'
    io.log.info('common.cpp:0', 'Device: CPU only (this engine has no GPU support)')
    io.log.info('common.cpp:0', `CPU: ${cpu}, ${availableParallelism()} cores, ${Math.round(totalmem() / 1048576)} MiB memory`)
    io.log.info('common.cpp:0', `Kernels: ${runtime.kernels.description}`)
    return 0
  } finally {
    runtime.kernels.close()
  }
}
