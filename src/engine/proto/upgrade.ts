import { AppError } from '../../lib/errors.js'
import {
  createMessage, messageSpec,
  type BlobShape, type LayerParameter, type NetParameter, type ParamSpec, type SolverParameter, type V1LayerParameter
} from './caffe.js'
import { copyPosition, lineOf, positionOf, setPosition } from './text-format.js'

/** A net or solver that cannot be brought to the current format; the message names the layer and line. */
export class ProtoUpgradeError extends AppError {
  constructor (message: string) {
    super(400, 'ET_PROTO_UPGRADE', message)
  }
}

/** One line Caffe logs while upgrading (upgrade_proto.cpp); callers may print them as glog lines. */
export interface UpgradeNote {
  readonly severity: 'INFO' | 'WARNING'
  readonly message: string
}

/** Result of an upgrade: the upgraded message (a new object) and what was done. */
export interface Upgraded<T> {
  readonly value: T
  readonly notes: readonly UpgradeNote[]
}

/** V1 LayerType enum → V2 type string, as Caffe's UpgradeV1LayerType maps them. */
export const V1_LAYER_TYPES: Readonly<Record<NonNullable<V1LayerParameter['type']>, string>> = {
  NONE: '',
  ABSVAL: 'AbsVal',
  ACCURACY: 'Accuracy',
  ARGMAX: 'ArgMax',
  BNLL: 'BNLL',
  CONCAT: 'Concat',
  CONTRASTIVE_LOSS: 'ContrastiveLoss',
  CONVOLUTION: 'Convolution',
  DECONVOLUTION: 'Deconvolution',
  DATA: 'Data',
  DROPOUT: 'Dropout',
  DUMMY_DATA: 'DummyData',
  EUCLIDEAN_LOSS: 'EuclideanLoss',
  ELTWISE: 'Eltwise',
  EXP: 'Exp',
  FLATTEN: 'Flatten',
  HDF5_DATA: 'HDF5Data',
  HDF5_OUTPUT: 'HDF5Output',
  HINGE_LOSS: 'HingeLoss',
  IM2COL: 'Im2col',
  IMAGE_DATA: 'ImageData',
  INFOGAIN_LOSS: 'InfogainLoss',
  INNER_PRODUCT: 'InnerProduct',
  LRN: 'LRN',
  MEMORY_DATA: 'MemoryData',
  MULTINOMIAL_LOGISTIC_LOSS: 'MultinomialLogisticLoss',
  MVN: 'MVN',
  POOLING: 'Pooling',
  POWER: 'Power',
  RELU: 'ReLU',
  SIGMOID: 'Sigmoid',
  SIGMOID_CROSS_ENTROPY_LOSS: 'SigmoidCrossEntropyLoss',
  SILENCE: 'Silence',
  SOFTMAX: 'Softmax',
  SOFTMAX_LOSS: 'SoftmaxWithLoss',
  SPLIT: 'Split',
  SLICE: 'Slice',
  TANH: 'TanH',
  WINDOW_DATA: 'WindowData',
  THRESHOLD: 'Threshold'
}

/** Solver `solver_type` enum → `type` string (Caffe's UpgradeSolverType). */
export const SOLVER_TYPES: Readonly<Record<NonNullable<SolverParameter['solver_type']>, string>> = {
  SGD: 'SGD',
  NESTEROV: 'Nesterov',
  ADAGRAD: 'AdaGrad',
  RMSPROP: 'RMSProp',
  ADADELTA: 'AdaDelta',
  ADAM: 'Adam'
}

/** True when the net uses any deprecated form upgradeNetParameter() rewrites. */
export function netNeedsUpgrade (net: NetParameter): boolean {
  return net.layers.length > 0 || net.input.length > 0 || needsBatchNormUpgrade(net.layer)
}

function describeLayer (layer: { name?: string | undefined }, index: number): string {
  const line = lineOf(layer)
  return `layer ${layer.name === undefined ? `#${index}` : `'${layer.name}'`}${line === undefined ? '' : ` (line ${line})`}`
}

const TRANSFORM_FIELDS = ['scale', 'mean_file', 'crop_size', 'mirror'] as const
const DATA_PARAM_OF: Partial<Record<NonNullable<V1LayerParameter['type']>, 'data_param' | 'image_data_param' | 'window_data_param'>> = {
  DATA: 'data_param',
  IMAGE_DATA: 'image_data_param',
  WINDOW_DATA: 'window_data_param'
}

/**
 * Moves the pre-transform_param data-layer fields (scale, mean_file, crop_size, mirror) of a V1
 * data layer into transform_param, as Caffe's UpgradeNetDataTransformation does.
 */
function upgradeDataTransform (layer: V1LayerParameter): { layer: V1LayerParameter, changed: boolean } {
  const key = layer.type === undefined ? undefined : DATA_PARAM_OF[layer.type]
  if (key === undefined) return { layer, changed: false }
  const param = layer[key]
  if (param === undefined || !TRANSFORM_FIELDS.some((f) => param[f] !== undefined)) return { layer, changed: false }
  const rest: Record<string, unknown> = { ...param }
  const transform: Record<string, unknown> = { ...(layer.transform_param ?? { mean_value: [] }) }
  for (const f of TRANSFORM_FIELDS) {
    if (param[f] === undefined) continue
    transform[f] = param[f]
    delete rest[f]
  }
  const next = { ...layer, [key]: rest, transform_param: transform } as V1LayerParameter
  copyPosition(layer, next)
  copyPosition(param, rest)
  if (layer.transform_param !== undefined) copyPosition(layer.transform_param, transform)
  return { layer: next, changed: true }
}

const V2_FIELDS = new Set(messageSpec('LayerParameter').byName.keys())

/** Caffe's UpgradeV1LayerParameter: same layer in the V2 form, sharing the unchanged sub-messages. */
function upgradeV1Layer (v1: V1LayerParameter, index: number): LayerParameter {
  if (v1.layer !== undefined) {
    throw new ProtoUpgradeError(`${describeLayer(v1, index)}: V0 layer definitions (layers { layer { … } }) are not supported; convert the net with Caffe's upgrade_net_proto_text first`)
  }
  const out = createMessage('LayerParameter')
  if (v1.name !== undefined) out.name = v1.name
  if (v1.type !== undefined) out.type = V1_LAYER_TYPES[v1.type]
  out.bottom = [...v1.bottom]
  out.top = [...v1.top]
  out.include = v1.include
  out.exclude = v1.exclude
  out.blobs = v1.blobs
  out.loss_weight = [...v1.loss_weight]
  const params: ParamSpec[] = []
  const at = (i: number): ParamSpec => {
    while (params.length <= i) params.push({})
    return params[i] as ParamSpec
  }
  v1.param.forEach((name, i) => { at(i).name = name })
  v1.blob_share_mode.forEach((mode, i) => { at(i).share_mode = mode })
  v1.blobs_lr.forEach((lr, i) => { at(i).lr_mult = lr })
  v1.weight_decay.forEach((decay, i) => { at(i).decay_mult = decay })
  out.param = params
  const target = out as Record<string, unknown>
  for (const [key, value] of Object.entries(v1)) {
    // Every V1 *_param has a V2 field of the same name and type.
    if (key.endsWith('_param') && value !== undefined && V2_FIELDS.has(key)) target[key] = value
  }
  copyPosition(v1, out)
  return out
}

function needsBatchNormUpgrade (layers: readonly LayerParameter[]): boolean {
  return layers.some((l) => l.type === 'BatchNorm' && l.param.length === 3)
}

/**
 * Brings a NetParameter (prototxt or .caffemodel) to the current V2 form, as Caffe's
 * UpgradeNetAsNeeded does: V1 `layers` (data-layer transform fields, enum types, blobs_lr /
 * weight_decay → param { lr_mult decay_mult }) become `layer`, the deprecated `input` /
 * `input_dim` / `input_shape` fields become a leading Input layer, and old-style BatchNorm param
 * specs are neutralised. Returns a new object; the input is not modified. Throws
 * ProtoUpgradeError for nets Caffe also refuses (both `layer` and `layers`, V0 layers, inputs
 * whose dimensions do not add up).
 */
export function upgradeNetParameter (net: NetParameter, options?: { file?: string }): Upgraded<NetParameter> {
  const file = options?.file ?? ''
  const notes: UpgradeNote[] = []
  const out: NetParameter = { ...net }
  copyPosition(net, out)

  if (net.layers.length > 0) {
    let dataChanged = false
    const v1 = net.layers.map((l) => {
      const r = upgradeDataTransform(l)
      dataChanged ||= r.changed
      return r.layer
    })
    if (dataChanged) {
      notes.push(
        { severity: 'INFO', message: `Attempting to upgrade input file specified using deprecated transformation parameters: ${file}` },
        { severity: 'INFO', message: 'Successfully upgraded file specified using deprecated data transformation parameters.' },
        { severity: 'WARNING', message: 'Note that future Caffe releases will only support transform_param messages for transformation fields.' }
      )
    }
    if (net.layer.length > 0) {
      throw new ProtoUpgradeError("Refusing to upgrade inconsistent NetParameter input; the definition includes both 'layer' and 'layers' fields. " +
        "The current format defines 'layer' fields with string type like layer { type: 'Layer' ... } and not layers { type: LAYER ... }. " +
        "Manually switch the definition to 'layer' format to continue.")
    }
    notes.push({ severity: 'INFO', message: `Attempting to upgrade input file specified using deprecated V1LayerParameter: ${file}` })
    out.layer = v1.map((l, i) => upgradeV1Layer(l, i))
    out.layers = []
    notes.push({ severity: 'INFO', message: 'Successfully upgraded file specified using deprecated V1LayerParameter' })
  }

  if (net.input.length > 0) {
    notes.push({ severity: 'INFO', message: `Attempting to upgrade input file specified using deprecated input fields: ${file}` })
    const hasShape = net.input_shape.length > 0
    const hasDim = net.input_dim.length > 0
    // A lone `input` without shapes is a legacy .caffemodel; dropping the field is enough.
    if (hasShape || hasDim) {
      const shapes: BlobShape[] = []
      if (hasShape) {
        if (net.input_shape.length !== net.input.length) {
          throw new ProtoUpgradeError(`net inputs: ${net.input.length} input names but ${net.input_shape.length} input_shape entries; give exactly one input_shape per input`)
        }
        shapes.push(...net.input_shape)
      } else {
        if (net.input_dim.length !== 4 * net.input.length) {
          throw new ProtoUpgradeError(`net inputs: ${net.input.length} input names need ${4 * net.input.length} input_dim values (4 per input), found ${net.input_dim.length}`)
        }
        for (let i = 0; i < net.input.length; i++) shapes.push({ dim: net.input_dim.slice(4 * i, 4 * i + 4) })
      }
      const input = createMessage('LayerParameter', { name: 'input', type: 'Input', top: net.input })
      input.input_param = { shape: shapes }
      const where = positionOf(net, 'input')
      if (where !== undefined) setPosition(input, where)
      out.layer = [input, ...out.layer]
    }
    out.input = []
    out.input_shape = []
    out.input_dim = []
    notes.push(
      { severity: 'INFO', message: 'Successfully upgraded file specified using deprecated input fields.' },
      { severity: 'WARNING', message: 'Note that future Caffe releases will only support input layers and not input fields.' }
    )
  }

  if (needsBatchNormUpgrade(out.layer)) {
    notes.push({ severity: 'INFO', message: `Attempting to upgrade batch norm layers using deprecated params: ${file}` })
    out.layer = out.layer.map((l) => {
      if (l.type !== 'BatchNorm' || l.param.length !== 3) return l
      // Older BatchNorm definitions froze their three statistics blobs through param specs;
      // Caffe now does that itself and only requires the multipliers to be zero.
      const next = { ...l, param: l.param.map((p) => ({ ...p, lr_mult: 0, decay_mult: 0 })) }
      copyPosition(l, next)
      return next
    })
    notes.push({ severity: 'INFO', message: 'Successfully upgraded batch norm layers using deprecated params.' })
  }
  return { value: out, notes }
}

/**
 * Caffe's UpgradeSolverAsNeeded plus the pure part of UpgradeSnapshotPrefixProperty: the
 * deprecated `solver_type` enum becomes the `type` string, and a missing snapshot_prefix becomes
 * the solver file's path without its extension (when `file` is given). Replacing a prefix that
 * names a directory needs the file system and is left to the caller.
 */
export function upgradeSolverParameter (solver: SolverParameter, options?: { file?: string }): Upgraded<SolverParameter> {
  const notes: UpgradeNote[] = []
  const out: SolverParameter = { ...solver }
  copyPosition(solver, out)
  const file = options?.file
  if (solver.solver_type !== undefined) {
    if (solver.type !== undefined) {
      throw new ProtoUpgradeError('Failed to upgrade solver: old solver_type field (enum) and new type field (string) cannot be both specified in solver proto text.')
    }
    notes.push({ severity: 'INFO', message: `Attempting to upgrade input file specified using deprecated 'solver_type' field (enum)': ${file ?? ''}` })
    out.type = SOLVER_TYPES[solver.solver_type]
    delete out.solver_type
    notes.push(
      { severity: 'INFO', message: "Successfully upgraded file specified using deprecated 'solver_type' field (enum) to 'type' field (string)." },
      { severity: 'WARNING', message: "Note that future Caffe releases will only support 'type' field (string) for a solver's type." }
    )
  }
  if (solver.snapshot_prefix === undefined && file !== undefined) {
    out.snapshot_prefix = withoutExtension(file)
    notes.push({ severity: 'INFO', message: `snapshot_prefix was not specified and is set to ${out.snapshot_prefix}` })
  }
  return { value: out, notes }
}

/** boost::filesystem::path::replace_extension() with no argument: drops the last extension of the file name. */
function withoutExtension (file: string): string {
  const slash = Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\'))
  const dot = file.lastIndexOf('.')
  // A leading dot (".hidden") or the special names "." and ".." are not extensions.
  if (dot <= slash + 1 || file.slice(slash + 1) === '..') return file
  return file.slice(0, dot)
}
