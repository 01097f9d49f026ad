import type { Blob } from '../blob.js'
import type { Kernels } from '../kernels/kernels.js'
import { Net, type LayerFactory, type NetOptions } from '../net.js'
import { mergeNetState } from '../net/state-rules.js'
import { blobToProto, loadFromProto } from '../net/blob-proto.js'
import { silentLog, type EngineLog } from '../net/engine-log.js'
import { createMessage, type LayerParameter, type NetParameter, type SolverParameter, type SolverState } from '../proto/caffe.js'
import { formatCxx } from './format-number.js'
import { learningRate } from './lr-policy.js'
import { ParamUpdater } from './param-updater.js'
import type { ResumeRecord } from './resume-extension.js'
import { Rng } from '../random.js'
import type { SolverAction } from './signal-handler.js'
import { resolveSolverConfig, type SolverConfig } from './solver-config.js'

/** A net definition read from a prototxt, with a way to say where each layer was written. */
export interface LoadedNet {
  readonly net: NetParameter
  readonly locate?: ((layer: LayerParameter) => string | undefined) | undefined
}

/** File access the solver needs; createFileSolverIo() is the real one, tests may wrap it. */
export interface SolverIo {
  /** Reads a net prototxt, upgraded to the V2 `layer` form. */
  readNetText (path: string): LoadedNet
  /** Reads a .caffemodel, upgraded to the V2 `layer` form. */
  readNetBinary (path: string): NetParameter
  writeNetBinary (path: string, net: NetParameter): void
  /** Reads a .solverstate and our resume record when it has one. */
  readSolverState (path: string): { state: SolverState, resume: ResumeRecord | undefined }
  writeSolverState (path: string, state: SolverState, resume: ResumeRecord): void
  /** Throws unless a file can be created under this snapshot prefix. */
  probeWritable (path: string): void
  /** Whether a path exists (to find a learned_net next to its .solverstate). */
  exists (path: string): boolean
}

export interface SolverOptions {
  readonly kernels: Kernels
  readonly createLayer: LayerFactory
  readonly io: SolverIo
  readonly log?: EngineLog | undefined
  /** Polled between iterations and test batches (Caffe's signal handler). */
  readonly action?: (() => SolverAction) | undefined
  readonly printSolver?: ((param: SolverParameter) => string) | undefined
  readonly printNet?: ((param: NetParameter) => string) | undefined
  /** Monotonic milliseconds; injectable so tests can pin the iter/s figures. */
  readonly now?: (() => number) | undefined
  /** Called after each iteration's update with the solver's loss figures (progress reporting). */
  readonly onIteration?: ((event: IterationEvent) => void) | undefined
}

export interface IterationEvent { iter: number, loss: number, smoothedLoss: number, rate: number }
export interface TestResult { iter: number, testNet: number, outputs: Array<{ name: string, value: number, lossWeight: number }> }

/** The solver definition is unusable (no net, test_iter missing, unwritable snapshot prefix…). */
export class SolverSetupError extends Error {
  readonly code = 'ET_SOLVER_SETUP'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SolverSetupError'
  }
}

/** A .solverstate that does not belong to this solver's net. */
export class SolverStateError extends Error {
  readonly code = 'ET_SOLVER_STATE'
  constructor (message: string) {
    super(message)
    this.name = 'SolverStateError'
  }
}

/**
 * Caffe's Solver + SGDSolver family: builds the train net and the test nets from a
 * SolverParameter, runs Step/Solve/Test with Caffe's iteration, display, test and snapshot
 * rules, and logs with Caffe 1.0's messages and file:line tags. Snapshots are binary protobuf
 * (.caffemodel + .solverstate) that real Caffe reads; our .solverstate also carries a resume
 * record (random state, data positions, loss window) so `restore` continues a run exactly.
 */
export class Solver {
  readonly param: SolverParameter
  readonly config: SolverConfig
  // Assigned by create(), which is the only way to obtain a Solver.
  net!: Net
  readonly testNets: Net[] = []
  updater!: ParamUpdater
  readonly rng: Rng
  iter = 0
  currentStep = 0
  /** Set when a stop was requested through `action`; Solve then ends early. */
  requestedEarlyExit = false
  readonly testResults: TestResult[] = []
  private readonly log: EngineLog
  private readonly io: SolverIo
  private readonly action: () => SolverAction
  private readonly now: () => number
  private readonly onIteration: ((e: IterationEvent) => void) | undefined
  private losses: number[] = []
  private smoothedLoss = 0
  private lossStartIter = 0
  private pendingLossWindow: { losses: number[], start: number, smoothed: number } | undefined

  private readonly netOptions: Omit<NetOptions, 'state' | 'locate'>

  private constructor (param: SolverParameter, options: SolverOptions) {
    this.param = param
    this.log = options.log ?? silentLog
    this.io = options.io
    this.action = options.action ?? (() => 'none')
    this.now = options.now ?? (() => performance.now())
    this.onIteration = options.onIteration
    if (options.printSolver !== undefined) {
      this.log.info('solver.cpp:44', `Initializing solver from parameters: \n${options.printSolver(param).replace(/\n$/, '')}`)
    }
    this.config = resolveSolverConfig(param)
    this.checkSnapshotWritePermissions()
    // Without random_seed Caffe seeds from the clock; any fresh seed does.
    this.rng = new Rng(this.config.randomSeed >= 0 ? this.config.randomSeed : Math.floor(Math.random() * 4294967296))
    this.netOptions = { kernels: options.kernels, createLayer: options.createLayer, rng: this.rng, log: this.log, printNet: options.printNet }
  }

  /**
   * Caffe's Solver::Init: checks the snapshot prefix, seeds the random stream, builds the train
   * net and the test nets, then the update rule's history. Nets already built are closed when a
   * later step fails.
   */
  static async create (param: SolverParameter, options: SolverOptions): Promise<Solver> {
    const solver = new Solver(param, options)
    try {
      solver.net = await solver.initTrainNet()
      await solver.initTestNets()
    } catch (err) {
      await solver.close().catch(() => {})
      throw err
    }
    if (solver.config.debugInfo) solver.log.warning('solver.cpp:56', 'debug_info is not supported by this engine; the per-layer debug lines are not printed.')
    solver.log.info('solver.cpp:56', 'Solver scaffolding done.')
    solver.updater = new ParamUpdater(solver.config.type, solver.config.hyper, solver.net.learnableParams)
    return solver
  }

  get type (): string { return this.config.type }

  private checkSnapshotWritePermissions (): void {
    if (this.config.snapshot === 0) return
    const prefix = this.config.snapshotPrefix
    if (prefix === undefined) throw new SolverSetupError('Check failed: param_.has_snapshot_prefix() In solver params, snapshot is specified but snapshot_prefix is not')
    try {
      this.io.probeWritable(this.snapshotFilename('.tempfile'))
    } catch (err) {
      throw new SolverSetupError(`Cannot write to snapshot prefix '${prefix}'.  Make sure that the directory exists and is writeable.`, { cause: err })
    }
  }

  private async initTrainNet (): Promise<Net> {
    const p = this.param
    const sources = [p.net, p.net_param, p.train_net, p.train_net_param].filter((x) => x !== undefined).length
    const fields = 'net, net_param, train_net, train_net_param'
    if (sources < 1) throw new SolverSetupError(`Check failed: num_train_nets >= 1 (0 vs. 1) SolverParameter must specify a train net using one of these fields: ${fields}`)
    if (sources > 1) throw new SolverSetupError(`Check failed: num_train_nets <= 1 (${sources} vs. 1) SolverParameter must not contain more than one of these fields specifying a train_net: ${fields}`)
    let loaded: LoadedNet
    if (p.train_net_param !== undefined) {
      this.log.info('solver.cpp:73', 'Creating training net specified in train_net_param.')
      loaded = { net: p.train_net_param }
    } else if (p.train_net !== undefined) {
      this.log.info('solver.cpp:77', `Creating training net from train_net file: ${p.train_net}`)
      loaded = this.io.readNetText(p.train_net)
    } else if (p.net_param !== undefined) {
      this.log.info('solver.cpp:82', 'Creating training net specified in net_param.')
      loaded = { net: p.net_param }
    } else {
      const file = p.net ?? ''
      this.log.info('solver.cpp:87', `Creating training net from net file: ${file}`)
      loaded = this.io.readNetText(file)
    }
    const state = mergeNetState(mergeNetState({ phase: 'TRAIN' }, loaded.net.state), p.train_state)
    return await Net.create({ ...loaded.net, state }, { ...this.netOptions, locate: loaded.locate })
  }

  private async initTestNets (): Promise<void> {
    const p = this.param
    const generic = (p.net_param !== undefined ? 1 : 0) + (p.net !== undefined ? 1 : 0)
    if (generic > 1) throw new SolverSetupError('Both net_param and net_file may not be specified.')
    const specific = p.test_net_param.length + p.test_net.length
    if (generic > 0 ? p.test_iter.length < specific : p.test_iter.length !== specific) {
      throw new SolverSetupError('test_iter must be specified for each test network.')
    }
    const instances = specific + (p.test_iter.length - specific)
    if (p.test_state.length > 0 && p.test_state.length !== instances) {
      throw new SolverSetupError('test_state must be unspecified or specified once per test net.')
    }
    if (instances > 0 && this.config.testInterval <= 0) {
      throw new SolverSetupError(`Check failed: param_.test_interval() > 0 (${this.config.testInterval} vs. 0)`)
    }
    const sources: Array<{ label: string, load: () => LoadedNet }> = []
    for (const np of p.test_net_param) sources.push({ label: 'test_net_param', load: () => ({ net: np }) })
    for (const file of p.test_net) sources.push({ label: `test_net file: ${file}`, load: () => this.io.readNetText(file) })
    const remaining = p.test_iter.length - sources.length
    for (let i = 0; i < remaining; i++) {
      if (p.net_param !== undefined) {
        const np = p.net_param
        sources.push({ label: 'net_param', load: () => ({ net: np }) })
      } else if (p.net !== undefined) {
        const file = p.net
        sources.push({ label: `net file: ${file}`, load: () => this.io.readNetText(file) })
      }
    }
    for (const [i, src] of sources.entries()) {
      const loaded = src.load()
      const state = mergeNetState(mergeNetState({ phase: 'TEST' }, loaded.net.state), p.test_state[i])
      this.log.info('solver.cpp:172', `Creating test net (#${i}) specified by ${src.label}`)
      this.testNets.push(await Net.create({ ...loaded.net, state }, { ...this.netOptions, locate: loaded.locate }))
    }
  }

  /** Caffe's Solver::Solve: optional restore, Step to max_iter, final snapshot, display and test. */
  async solve (resumeFile?: string): Promise<void> {
    this.log.info('solver.cpp:272', `Solving ${this.net.name}`)
    this.log.info('solver.cpp:273', `Learning Rate Policy: ${this.config.schedule.lrPolicy}`)
    this.requestedEarlyExit = false
    if (resumeFile !== undefined) {
      this.log.info('solver.cpp:279', `Restoring previous solver status from ${resumeFile}`)
      this.restore(resumeFile)
    }
    await this.step(this.config.maxIter - this.iter)
    const c = this.config
    if (c.snapshotAfterTrain && (c.snapshot === 0 || this.iter % c.snapshot !== 0)) this.snapshot()
    if (this.requestedEarlyExit) {
      this.log.info('solver.cpp:294', 'Optimization stopped early.')
      return
    }
    if (c.display > 0 && this.iter % c.display === 0) {
      const loss = await this.net.forward()
      this.updateSmoothedLoss(loss, this.lossStartIter)
      this.log.info('solver.cpp:310', `Iteration ${this.iter}, loss = ${formatCxx(this.smoothedLoss)}`)
    }
    if (c.testInterval > 0 && this.iter % c.testInterval === 0) await this.testAll()
    this.log.info('solver.cpp:315', 'Optimization Done.')
  }

  /** Caffe's Solver::Step: `iters` updates with tests, display and snapshots on their schedules. */
  async step (iters: number): Promise<void> {
    const c = this.config
    const stopIter = this.iter + iters
    this.losses = []
    this.smoothedLoss = 0
    this.lossStartIter = this.iter
    if (this.pendingLossWindow !== undefined) {
      // A restored run continues the interrupted run's average_loss window.
      this.losses = this.pendingLossWindow.losses
      this.smoothedLoss = this.pendingLossWindow.smoothed
      this.lossStartIter = this.pendingLossWindow.start
      this.pendingLossWindow = undefined
    }
    let timerStart = this.now()
    let iterationsLast = this.iter
    while (this.iter < stopIter) {
      this.net.clearParamDiffs()
      if (c.testInterval > 0 && this.iter % c.testInterval === 0 && (this.iter > 0 || c.testInitialization)) {
        await this.testAll()
        if (this.requestedEarlyExit) break
      }
      const display = c.display > 0 && this.iter % c.display === 0
      let loss = 0
      for (let i = 0; i < c.hyper.iterSize; i++) loss += await this.net.forwardBackward()
      loss /= c.hyper.iterSize
      this.updateSmoothedLoss(loss, this.lossStartIter)
      if (display) {
        // Caffe's CPU timer has millisecond resolution; keep it so the figures read alike.
        const lapse = Math.floor(this.now() - timerStart) / 1000
        const perS = (this.iter - iterationsLast) / (lapse !== 0 ? lapse : 1)
        this.log.info('solver.cpp:218', `Iteration ${this.iter} (${formatCxx(Math.fround(perS))} iter/s, ${formatCxx(Math.fround(lapse))}s/${c.display} iters), loss = ${formatCxx(this.smoothedLoss)}`)
        timerStart = this.now()
        iterationsLast = this.iter
        this.logOutputs(this.net, 'solver.cpp:237', '    Train net output #', (j) => this.net.outputBlobs[j]?.data)
      }
      const rate = this.applyUpdate(display)
      this.iter++
      this.onIteration?.({ iter: this.iter, loss, smoothedLoss: this.smoothedLoss, rate })
      // Let SIGINT/SIGHUP handlers run: they only fire when the event loop gets a turn.
      await new Promise<void>((resolve) => setImmediate(resolve))
      const request = this.action()
      if ((c.snapshot > 0 && this.iter % c.snapshot === 0) || request === 'snapshot') this.snapshot()
      if (request === 'stop') {
        this.requestedEarlyExit = true
        break
      }
    }
  }

  private applyUpdate (display: boolean): number {
    const lr = learningRate(this.config.schedule, this.iter, this.currentStep)
    this.currentStep = lr.currentStep
    if (lr.multistepAdvanced) this.log.info('sgd_solver.cpp:46', `MultiStep Status: Iteration ${this.iter}, step = ${this.currentStep}`)
    if (display) this.log.info('sgd_solver.cpp:105', `Iteration ${this.iter}, lr = ${formatCxx(lr.rate)}`)
    const clip = this.updater.apply(lr.rate, this.iter)
    if (clip !== undefined) {
      this.log.info('sgd_solver.cpp:92', `Gradient clipping: scaling down gradients (L2 norm ${formatCxx(clip.l2norm)} > ${formatCxx(clip.clip)}) by scale factor ${formatCxx(clip.scale)}`)
    }
    return lr.rate
  }

  private updateSmoothedLoss (loss: number, startIter: number): void {
    const avg = this.config.averageLoss
    if (this.losses.length < avg) {
      this.losses.push(loss)
      const size = this.losses.length
      this.smoothedLoss = Math.fround((this.smoothedLoss * (size - 1) + loss) / size)
    } else {
      const idx = (this.iter - startIter) % avg
      this.smoothedLoss = Math.fround(this.smoothedLoss + (loss - (this.losses[idx] ?? 0)) / avg)
      this.losses[idx] = loss
    }
  }

  private logOutputs (net: Net, where: string, prefix: string, values: (j: number) => ArrayLike<number> | undefined): void {
    let index = 0
    net.outputBlobIndices.forEach((blobId, j) => {
      const name = net.blobNames[blobId] ?? ''
      const w = net.blobLossWeights[blobId] ?? 0
      const v = values(j) ?? []
      for (let k = 0; k < v.length; k++) {
        const x = v[k] ?? 0
        const lossNote = w !== 0 ? ` (* ${formatCxx(w)} = ${formatCxx(Math.fround(w * x))} loss)` : ''
        this.log.info(where, `${prefix}${index++}: ${name} = ${formatCxx(x)}${lossNote}`)
      }
    })
  }

  async testAll (): Promise<void> {
    for (let i = 0; i < this.testNets.length && !this.requestedEarlyExit; i++) await this.test(i)
  }

  /** Caffe's Solver::Test: test_iter forward passes with the train net's current weights, outputs averaged. */
  async test (id: number): Promise<void> {
    const testNet = this.testNets[id]
    if (testNet === undefined) return
    this.log.info('solver.cpp:330', `Iteration ${this.iter}, Testing net (#${id})`)
    testNet.shareTrainedLayersWith(this.net)
    const iters = this.config.testIter[id] ?? 0
    const scores: number[] = []
    let loss = 0
    for (let i = 0; i < iters; i++) {
      let request = this.action()
      while (request !== 'none') {
        if (request === 'snapshot') this.snapshot()
        else if (request === 'stop') this.requestedEarlyExit = true
        request = this.action()
      }
      if (this.requestedEarlyExit) break
      const iterLoss = await testNet.forward()
      if (this.config.testComputeLoss) loss += iterLoss
      let idx = 0
      for (const blob of testNet.outputBlobs) {
        for (let k = 0; k < blob.count; k++) {
          // Caffe sums the per-batch outputs in float.
          scores[idx] = Math.fround((scores[idx] ?? 0) + (blob.data[k] ?? 0))
          idx++
        }
      }
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    if (this.requestedEarlyExit) {
      this.log.info('solver.cpp:379', 'Test interrupted.')
      return
    }
    if (this.config.testComputeLoss) {
      this.log.info('solver.cpp:384', `Test loss: ${formatCxx(Math.fround(loss / iters))}`)
    }
    const result: TestResult = { iter: this.iter, testNet: id, outputs: [] }
    let idx = 0
    testNet.outputBlobIndices.forEach((blobId) => {
      const blob = testNet.blobs[blobId]
      const name = testNet.blobNames[blobId] ?? ''
      const w = testNet.blobLossWeights[blobId] ?? 0
      for (let k = 0; k < (blob?.count ?? 0); k++) {
        const mean = Math.fround((scores[idx] ?? 0) / iters)
        const lossNote = w !== 0 ? ` (* ${formatCxx(w)} = ${formatCxx(Math.fround(w * mean))} loss)` : ''
        this.log.info('solver.cpp:397', `    Test net output #${idx}: ${name} = ${formatCxx(mean)}${lossNote}`)
        result.outputs.push({ name, value: mean, lossWeight: w })
        idx++
      }
    })
    this.testResults.push(result)
  }

  snapshotFilename (extension: string): string {
    return `${this.config.snapshotPrefix ?? ''}_iter_${this.iter}${extension}`
  }

  /** Writes `<prefix>_iter_N.caffemodel` and `.solverstate` (always binary protobuf). */
  snapshot (): { model: string, state: string } {
    if (this.config.snapshotFormat === 'HDF5') {
      this.log.warning('solver.cpp:414', 'snapshot_format HDF5 is not supported by this engine; writing BINARYPROTO snapshots instead.')
    }
    const model = this.snapshotFilename('.caffemodel')
    this.log.info('solver.cpp:447', `Snapshotting to binary proto file ${model}`)
    this.io.writeNetBinary(model, this.net.toProto(this.config.snapshotDiff))
    const statePath = this.snapshotFilename('.solverstate')
    const state = createMessage('SolverState', {
      iter: this.iter,
      learned_net: model,
      current_step: this.currentStep,
      history: this.updater.history.map((h) => blobToProto(h))
    })
    this.log.info('sgd_solver.cpp:273', `Snapshotting solver state to binary proto file ${statePath}`)
    this.io.writeSolverState(statePath, state, {
      version: 1,
      rng: this.rng.getState().map((v) => (Number.isNaN(v) ? null : v)),
      train: this.net.saveLayerStates(),
      test: this.testNets.map((n) => n.saveLayerStates()),
      losses: [...this.losses],
      lossStartIter: this.lossStartIter,
      smoothedLoss: this.smoothedLoss
    })
    return { model, state: statePath }
  }

  /** Caffe's SGDSolver::RestoreSolverStateFromBinaryProto plus our resume record. */
  restore (stateFile: string): void {
    if (stateFile.endsWith('.h5')) throw new SolverStateError(`HDF5 solver states are not supported by this engine: ${stateFile}`)
    const { state, resume } = this.io.readSolverState(stateFile)
    this.iter = state.iter ?? 0
    if (state.learned_net !== undefined && state.learned_net !== '') {
      this.net.copyTrainedLayersFrom(this.io.readNetBinary(this.locateLearnedNet(state.learned_net, stateFile)))
    }
    this.currentStep = state.current_step ?? 0
    const history = this.updater.history
    if (state.history.length !== history.length) {
      throw new SolverStateError(`Check failed: state.history_size() == history_.size() (${state.history.length} vs. ${history.length}) Incorrect length of history blobs.`)
    }
    this.log.info('sgd_solver.cpp:318', 'SGDSolver: restoring history')
    history.forEach((h: Blob, i) => {
      const proto = state.history[i]
      if (proto === undefined) return
      loadFromProto(h, proto)
      if (h.count !== this.net.learnableParams[i % this.net.learnableParams.length]?.blob.count) {
        throw new SolverStateError(`history blob ${i} has shape ${h.shapeString()}, which does not match the net's parameter`)
      }
    })
    if (resume !== undefined) {
      this.rng.setState(resume.rng.map((v) => v ?? Number.NaN))
      this.net.restoreLayerStates(resume.train)
      resume.test.forEach((s, i) => this.testNets[i]?.restoreLayerStates(s))
      this.pendingLossWindow = { losses: [...resume.losses], start: resume.lossStartIter, smoothed: resume.smoothedLoss }
    }
  }

  /**
   * learned_net is stored as the path the snapshot was written to, relative to the old working
   * directory. When that path is gone, the .caffemodel of the same name next to the .solverstate is
   * the one (a worker downloads both into one folder).
   */
  private locateLearnedNet (learnedNet: string, stateFile: string): string {
    if (this.io.exists(learnedNet)) return learnedNet
    const slash = Math.max(stateFile.lastIndexOf('/'), stateFile.lastIndexOf('\\'))
    const base = learnedNet.slice(Math.max(learnedNet.lastIndexOf('/'), learnedNet.lastIndexOf('\\')) + 1)
    const beside = slash >= 0 ? `${stateFile.slice(0, slash + 1)}${base}` : base
    return this.io.exists(beside) ? beside : learnedNet
  }

  /** --weights: copies a trained model into the train net and every test net (Caffe's CopyLayers). */
  copyWeights (model: NetParameter): void {
    this.net.copyTrainedLayersFrom(model)
    for (const t of this.testNets) t.copyTrainedLayersFrom(model)
  }

  async close (): Promise<void> {
    // net is unset when create() failed before the train net was built.
    const train = this.net as Net | undefined
    await train?.close()
    for (const t of this.testNets) await t.close()
  }
}
