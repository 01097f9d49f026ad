import { AppError } from '../../lib/errors.js'
import { defaultOf, type LayerParameter, type NetParameter, type NetStateRule, type Phase, type SolverParameter, type V1LayerParameter } from './caffe.js'
import { lineOf, parseNetPrototxt, parseSolverPrototxt, printTextFormat } from './text-format.js'
import { SOLVER_TYPES, V1_LAYER_TYPES } from './upgrade.js'

/** A net or solver the job pipeline cannot run (no data layer, ambiguous sources, multi-net solver). */
export class PrototxtRewriteError extends AppError {
  constructor (message: string) {
    super(400, 'ET_PROTOTXT_REWRITE', message)
  }
}

/** The solver settings the job pipeline needs, with Caffe's proto2 defaults applied. */
export interface SolverSummary {
  net: string | undefined
  snapshotPrefix: string | undefined
  maxIter: number
  snapshot: number
  snapshotAfterTrain: boolean
  snapshotFormat: 'HDF5' | 'BINARYPROTO'
  testInterval: number
  testIter: number[]
  testInitialization: boolean
  display: number
  baseLr: number
  lrPolicy: string | undefined
  /** After Caffe's solver_type → type upgrade: 'SGD', 'Nesterov', 'Adam', … */
  type: string
  solverMode: 'CPU' | 'GPU'
}

/** Summarises a parsed solver (no upgrade is written back; `type` reflects the deprecated enum). */
export function summarizeSolver (s: SolverParameter): SolverSummary {
  return {
    net: s.net,
    snapshotPrefix: s.snapshot_prefix,
    maxIter: s.max_iter ?? defaultOf('SolverParameter', 'max_iter'),
    snapshot: s.snapshot ?? defaultOf('SolverParameter', 'snapshot'),
    snapshotAfterTrain: s.snapshot_after_train ?? defaultOf('SolverParameter', 'snapshot_after_train'),
    snapshotFormat: s.snapshot_format ?? defaultOf('SolverParameter', 'snapshot_format'),
    testInterval: s.test_interval ?? defaultOf('SolverParameter', 'test_interval'),
    testIter: [...s.test_iter],
    testInitialization: s.test_initialization ?? defaultOf('SolverParameter', 'test_initialization'),
    display: s.display ?? defaultOf('SolverParameter', 'display'),
    baseLr: s.base_lr ?? defaultOf('SolverParameter', 'base_lr'),
    lrPolicy: s.lr_policy,
    type: s.type ?? (s.solver_type === undefined ? defaultOf('SolverParameter', 'type') : SOLVER_TYPES[s.solver_type]),
    solverMode: s.solver_mode ?? defaultOf('SolverParameter', 'solver_mode')
  }
}

/** What to change in a solver. */
export interface SolverChanges {
  /** Path the worker wrote the net prototxt to. */
  readonly net: string
  /** Path prefix for .caffemodel/.solverstate snapshots. */
  readonly snapshotPrefix: string
  readonly solverMode?: 'CPU' | 'GPU'
}

/**
 * Points a user's solver at the worker's copy of the net and at the worker's snapshot directory.
 * The solver must name its net with `net:` (train_net/test_net pairs and inline nets are refused,
 * since the job holds one net file). Returns canonical prototxt (comments are not kept).
 */
export function rewriteSolverPrototxt (text: string, changes: SolverChanges, options?: { file?: string }): { text: string, solver: SolverParameter, summary: SolverSummary } {
  const solver = parseSolverPrototxt(text, options?.file)
  const multi: string[] = []
  if (solver.train_net !== undefined) multi.push('train_net')
  if (solver.test_net.length > 0) multi.push('test_net')
  if (solver.net_param !== undefined) multi.push('net_param')
  if (solver.train_net_param !== undefined) multi.push('train_net_param')
  if (solver.test_net_param.length > 0) multi.push('test_net_param')
  if (multi.length > 0) {
    throw new PrototxtRewriteError(`the solver sets ${multi.join(', ')}; the job pipeline needs a solver that names its one train/test net with net: "…"`)
  }
  solver.net = changes.net
  solver.snapshot_prefix = changes.snapshotPrefix
  if (changes.solverMode !== undefined) solver.solver_mode = changes.solverMode
  return { text: printTextFormat('SolverParameter', solver), solver, summary: summarizeSolver(solver) }
}

/** Where one phase's data comes from. */
export interface DataSource {
  /** LMDB/LevelDB directory (Data layers) or list file (ImageData layers). */
  readonly source: string
  /** Database kind for Data layers; left as written when absent. */
  readonly backend?: 'LMDB' | 'LEVELDB'
  /** Directory ImageData list entries are relative to; left as written when absent. */
  readonly rootFolder?: string
  /** Mean .binaryproto to use instead of the one the net names; left as written when absent. */
  readonly meanFile?: string
}

/** One data layer found in the net and what was done to it. */
export interface DataLayerReport {
  readonly name: string | undefined
  /** V2 type string ('Data', 'ImageData', 'HDF5Data', 'Input', …), also for V1 nets. */
  readonly kind: string
  readonly line: number | undefined
  /** Phases the layer is part of under Caffe's default train/test net states. */
  readonly phases: Phase[]
  /** Source as the user wrote it. */
  readonly originalSource: string | undefined
  readonly originalMeanFile: string | undefined
  /** True when this layer's source was replaced. */
  readonly rewritten: boolean
}

/** Result of rewriteNetPrototxt. */
export interface NetRewrite {
  readonly text: string
  readonly net: NetParameter
  /** 'V1' when the net uses `layers { type: DATA }`, kept as written. */
  readonly form: 'V1' | 'V2'
  readonly dataLayers: DataLayerReport[]
}

const DATA_KINDS = new Set(['Data', 'ImageData', 'HDF5Data', 'MemoryData', 'DummyData', 'WindowData', 'Input', 'Python'])

interface AnyLayer {
  name?: string | undefined
  include: NetStateRule[]
  exclude: NetStateRule[]
}

/** Caffe's StateMeetsRule for the default states (`caffe train` uses level 0 and no stages). */
function ruleMatches (rule: NetStateRule, phase: Phase): boolean {
  if (rule.phase !== undefined && rule.phase !== phase) return false
  if (rule.min_level !== undefined && rule.min_level > 0) return false
  if (rule.max_level !== undefined && rule.max_level < 0) return false
  return rule.stage.length === 0
}

function phasesOf (layer: AnyLayer): Phase[] {
  return (['TRAIN', 'TEST'] as const).filter((phase) => layer.include.length > 0
    ? layer.include.some((r) => ruleMatches(r, phase))
    : !layer.exclude.some((r) => ruleMatches(r, phase)))
}

function describe (layer: AnyLayer): string {
  const line = lineOf(layer)
  return `layer ${layer.name === undefined ? '(unnamed)' : `'${layer.name}'`}${line === undefined ? '' : ` (line ${line})`}`
}

function pickSource (layer: AnyLayer, phases: Phase[], sources: Partial<Record<Phase, DataSource>>): DataSource | undefined {
  const train = phases.includes('TRAIN') ? sources.TRAIN : undefined
  const test = phases.includes('TEST') ? sources.TEST : undefined
  if (train !== undefined && test !== undefined && JSON.stringify(train) !== JSON.stringify(test)) {
    throw new PrototxtRewriteError(`${describe(layer)} is used in both the TRAIN and the TEST phase, so it cannot read both datasets; give each phase its own data layer with include { phase: TRAIN } / include { phase: TEST }`)
  }
  return train ?? test
}

/** Mutable view of the data fields shared by DataParameter and ImageDataParameter. */
interface SourceParam {
  source?: string | undefined
  mean_file?: string | undefined
}

function rewriteLayer (
  layer: AnyLayer & { transform_param?: { mean_file?: string | undefined, mean_value: number[] } | undefined },
  kind: string,
  param: SourceParam,
  src: DataSource | undefined
): { originalSource: string | undefined, originalMeanFile: string | undefined, rewritten: boolean, param: SourceParam } {
  const originalSource = param.source
  // V1 nets from before transform_param keep mean_file in the data parameter itself.
  const meanInParam = param.mean_file !== undefined
  const originalMeanFile = meanInParam ? param.mean_file : layer.transform_param?.mean_file
  if (src === undefined) return { originalSource, originalMeanFile, rewritten: false, param }
  const next: SourceParam & Record<string, unknown> = { ...param, source: src.source }
  if (kind === 'Data' && src.backend !== undefined) next.backend = src.backend
  if (kind === 'ImageData' && src.rootFolder !== undefined) next.root_folder = src.rootFolder
  if (src.meanFile !== undefined) {
    if (meanInParam) next.mean_file = src.meanFile
    else layer.transform_param = { ...(layer.transform_param ?? { mean_value: [] }), mean_file: src.meanFile }
  }
  return { originalSource, originalMeanFile, rewritten: true, param: next }
}

/**
 * Points the TRAIN/TEST data layers of a user's net (V1 `layers` or V2 `layer` form, kept as
 * written) at the worker's datasets: Data layers get data_param.source (+ backend), ImageData
 * layers image_data_param.source (+ root_folder). Phases follow Caffe's include/exclude rules for
 * the default train and test states. Throws PrototxtRewriteError when the net has no Data or
 * ImageData layer, or when one layer serves both phases but the phases have different datasets.
 * Returns canonical prototxt that this engine and real Caffe both read (comments are not kept).
 */
export function rewriteNetPrototxt (text: string, sources: Partial<Record<Phase, DataSource>>, options?: { file?: string }): NetRewrite {
  const net = parseNetPrototxt(text, options?.file)
  const form = net.layers.length > 0 ? 'V1' : 'V2'
  const reports: DataLayerReport[] = []
  const feedable: string[] = []

  const visit = (layer: LayerParameter | V1LayerParameter, kind: string): void => {
    if (!DATA_KINDS.has(kind)) return
    const phases = phasesOf(layer)
    const base = { name: layer.name, kind, line: lineOf(layer), phases }
    if (kind !== 'Data' && kind !== 'ImageData') {
      reports.push({ ...base, originalSource: undefined, originalMeanFile: layer.transform_param?.mean_file, rewritten: false })
      return
    }
    feedable.push(kind)
    const key = kind === 'Data' ? 'data_param' : 'image_data_param'
    const src = phases.length === 0 ? undefined : pickSource(layer, phases, sources)
    const r = rewriteLayer(layer, kind, layer[key] ?? {}, src)
    if (r.rewritten) (layer as Record<string, unknown>)[key] = r.param
    reports.push({ ...base, originalSource: r.originalSource, originalMeanFile: r.originalMeanFile, rewritten: r.rewritten })
  }

  for (const layer of net.layer) visit(layer, layer.type ?? '')
  for (const layer of net.layers) visit(layer, layer.type === undefined ? '' : V1_LAYER_TYPES[layer.type])

  if (feedable.length === 0) {
    const others = reports.map((r) => `${r.kind} ${r.name === undefined ? '(unnamed)' : `'${r.name}'`}${r.line === undefined ? '' : ` (line ${r.line})`}`)
    throw new PrototxtRewriteError(`the net has no Data or ImageData layer to read the dataset${others.length > 0 ? ` (it has ${others.join(', ')})` : ''}; add a Data layer (LMDB/LevelDB) or an ImageData layer (list file) for the TRAIN phase`)
  }
  return { text: printTextFormat('NetParameter', net), net, form, dataLayers: reports }
}
