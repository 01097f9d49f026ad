import { Blob } from './blob.js'
import type { Kernels } from './kernels/kernels.js'
import type { Layer, LayerContext, Phase } from './layer.js'
import { LayerConfigError } from './layers/errors.js'
import { createMessage, type LayerParameter, type NetParameter, type NetState } from './proto/caffe.js'
import { positionOf } from './proto/text-format.js'
import { netNeedsUpgrade, upgradeNetParameter } from './proto/upgrade.js'
import type { Rng } from './random.js'
import { blobToProto, copyFromProto, protoShapeString, shapeEquals } from './net/blob-proto.js'
import { silentLog, type EngineLog } from './net/engine-log.js'
import { insertSplits } from './net/insert-splits.js'
import { filterLayers, mergeNetState } from './net/state-rules.js'
import { formatCxx } from './solver/format-number.js'
import type { LearnableParam } from './solver/param-updater.js'

/** Creates one layer from its parameters; the compute engine's registry in production. */
export type LayerFactory = (param: LayerParameter, ctx: LayerContext) => Layer

/** What a net needs besides its NetParameter. */
export interface NetOptions {
  readonly kernels: Kernels
  readonly createLayer: LayerFactory
  /** Seeded generator shared by the net's layers (dropout masks, fillers, shuffles). */
  readonly rng: Rng
  readonly log?: EngineLog | undefined
  /** Overrides merged over the NetParameter's own state (Caffe's --phase, --level, --stage). */
  readonly state?: Partial<NetState> | undefined
  /** Where a layer was written, for error messages: `lenet_train_test.prototxt:52`. */
  readonly locate?: ((layer: LayerParameter) => string | undefined) | undefined
  /** Prints a NetParameter as prototxt for the "Initializing net from parameters" line. */
  readonly printNet?: ((param: NetParameter) => string) | undefined
}

/**
 * A problem in the net definition or in a layer's set-up. The message names the layer, its type
 * and where it was written, then says what is wrong, so one line tells the user what to fix.
 */
export class NetDefinitionError extends Error {
  readonly code = 'ET_NET_DEFINITION'
  readonly layer: string | undefined
  constructor (message: string, layer?: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'NetDefinitionError'
    this.layer = layer
  }
}

/** Weights that do not fit the net: shape or blob-count mismatch. Messages as Caffe's net.cpp. */
export class WeightsMismatchError extends Error {
  readonly code = 'ET_WEIGHTS_MISMATCH'
  constructor (message: string) {
    super(message)
    this.name = 'WeightsMismatchError'
  }
}

/**
 * Optional capability of a layer whose output depends on a read position or its own random
 * stream (data layers). The solver stores this state in snapshots so that a resumed run reads
 * exactly the batches an uninterrupted run would have read.
 */
export interface ResumableLayer {
  saveState (): unknown
  restoreState (state: unknown): void
}

export function isResumable (layer: Layer): layer is Layer & ResumableLayer {
  const l = layer as Partial<ResumableLayer>
  return typeof l.saveState === 'function' && typeof l.restoreState === 'function'
}

interface LayerSlot {
  readonly layer: Layer
  readonly param: LayerParameter
  readonly bottoms: Blob[]
  readonly tops: Blob[]
  readonly bottomIds: number[]
  readonly topIds: number[]
  /** Loss weight of each top (0 for most). */
  readonly lossWeights: number[]
  needBackward: boolean
  readonly bottomNeedBackward: boolean[]
}

/**
 * Caffe's Net<float>: filters layers by NetState rules, inserts Split layers, connects top and
 * bottom blobs by name (in place where a top reuses its bottom's name), works out loss weights and
 * which layers need backward, and runs forward/backward over the graph. Each data layer's
 * `prefetch` is awaited before its forward, so `forward()` is async.
 *
 * Loss contract with the layers: a top with loss weight w has its diff filled with w before
 * backward (Caffe's SetLossWeights), so loss layers scale their gradient by `top[0].diff[0]`;
 * layers accumulate (+=) into their parameter diffs, which the net clears once per iteration.
 */
export class Net {
  readonly name: string
  readonly phase: Phase
  readonly blobs: Blob[] = []
  readonly blobNames: string[] = []
  readonly blobLossWeights: number[] = []
  readonly inputBlobIndices: number[] = []
  readonly outputBlobIndices: number[] = []
  readonly learnableParams: LearnableParam[] = []
  /** The LayerParameters after filtering and split insertion, in execution order. */
  readonly layerParams: LayerParameter[] = []
  private readonly slots: LayerSlot[] = []
  private readonly blobNeedBackward: boolean[] = []
  private readonly log: EngineLog
  private readonly blobIndex = new Map<string, number>()
  private readonly layerIndex = new Map<string, number>()
  private readonly state: NetState
  private readonly paramNames = new Set<string>()

  private constructor (input: NetParameter, options: NetOptions) {
    this.log = options.log ?? silentLog
    this.state = mergeNetState(input.state ?? createMessage('NetState'), options.state)
    this.phase = this.state.phase ?? 'TEST'
    this.name = input.name ?? ''
  }

  /**
   * Builds and sets up a net. Each layer's async `open` (data layers: database, first record)
   * is awaited between its creation and its setUp; a net that fails to build closes the layers
   * it had already created.
   */
  static async create (input: NetParameter, options: NetOptions): Promise<Net> {
    const net = new Net(input, options)
    try {
      await net.init(input, options)
    } catch (err) {
      await net.close().catch(() => {})
      throw err
    }
    return net
  }

  private async init (original: NetParameter, options: NetOptions): Promise<void> {
    const state = this.state
    // A V1 or input-field definition handed over directly (e.g. a solver's inline net_param).
    const input = netNeedsUpgrade(original) ? upgradeNetParameter(original).value : original
    const note = (line: number, message: string): void => this.log.info(`net.cpp:${line}`, message)
    const filtered = filterLayers(input.layer, state, note)
    const filteredParam: NetParameter = { ...input, state, layer: filtered }
    if (options.printNet !== undefined) {
      this.log.info('net.cpp:51', `Initializing net from parameters: \n${options.printNet(filteredParam).replace(/\n$/, '')}`)
    }
    const where = new Map<string, string | undefined>()
    const locate = options.locate ?? defaultLocate
    for (const l of filtered) where.set(l.name ?? '', locate(l))
    // Same wording as the layers' own LayerConfigError, prefixed by where the layer was written.
    const describe = (p: LayerParameter): string => {
      const at = where.get(p.name ?? '')
      return `${at === undefined ? '' : `${at}: `}layer "${p.name ?? ''}" (${p.type ?? '?'})`
    }
    let layers: LayerParameter[]
    try {
      layers = insertSplits(filtered, (s) => createMessage('LayerParameter', {
        name: s.name, type: 'Split', bottom: [s.bottom], top: s.top, loss_weight: s.lossWeight
      }))
    } catch (err) {
      throw new NetDefinitionError(messageOf(err), undefined, { cause: err })
    }
    const ctx: LayerContext = { kernels: options.kernels, phase: this.phase, rng: options.rng, log: this.log }
    const available = new Set<string>()
    let memoryUsed = 0

    for (const original of layers) {
      const param: LayerParameter = original.phase === undefined ? { ...original, phase: this.phase } : original
      const name = param.name ?? ''
      const type = param.type ?? ''
      const fail = (problem: string, cause?: unknown): never => {
        throw new NetDefinitionError(`${describe(param)}: ${problem}`, name, { cause })
      }
      const failWith = (err: unknown): never => {
        if (err instanceof LayerConfigError) {
          const at = where.get(name)
          throw new NetDefinitionError(`${at === undefined ? '' : `${at}: `}${err.message}`, name, { cause: err })
        }
        return fail(messageOf(err), err)
      }
      if (param.propagate_down.length > 0 && param.propagate_down.length !== param.bottom.length) {
        fail('propagate_down param must be specified either 0 or bottom_size times')
      }
      this.log.info('layer_factory.hpp:77', `Creating layer ${name}`)
      let layer: Layer
      try {
        layer = options.createLayer(param, ctx)
      } catch (err) {
        return failWith(err)
      }
      try {
        // Data layers open their database and read the first record here, before their shape is known
        // (Caffe opens it while creating the layer, so "Opened lmdb" comes before "Creating Layer").
        if (layer.open !== undefined) await layer.open()
      } catch (err) {
        await Promise.resolve(layer.close?.()).catch(() => {})
        return failWith(err)
      }
      this.log.info('net.cpp:84', `Creating Layer ${name}`)
      const slot: LayerSlot = {
        layer, param, bottoms: [], tops: [], bottomIds: [], topIds: [], lossWeights: [], needBackward: false, bottomNeedBackward: []
      }
      this.slots.push(slot)
      this.layerParams.push(param)
      if (!this.layerIndex.has(name)) this.layerIndex.set(name, this.slots.length - 1)
      let needBackward = false
      param.bottom.forEach((blobName, j) => {
        if (!available.has(blobName)) fail(`Unknown bottom blob '${blobName}' (layer '${name}', bottom index ${j})`)
        const id = this.blobIndex.get(blobName) ?? -1
        this.log.info('net.cpp:406', `${name} <- ${blobName}`)
        slot.bottoms.push(this.blob(id))
        slot.bottomIds.push(id)
        available.delete(blobName)
        const need = param.propagate_down.length > 0 ? (param.propagate_down[j] ?? false) : (this.blobNeedBackward[id] ?? false)
        slot.bottomNeedBackward.push(need)
        needBackward ||= this.blobNeedBackward[id] ?? false
      })
      param.top.forEach((blobName, j) => {
        if (param.bottom[j] === blobName) {
          this.log.info('net.cpp:367', `${name} -> ${blobName} (in-place)`)
          const id = this.blobIndex.get(blobName) ?? -1
          slot.tops.push(this.blob(id))
          slot.topIds.push(id)
        } else if (this.blobIndex.has(blobName)) {
          fail(`Top blob '${blobName}' produced by multiple sources.`)
        } else {
          this.log.info('net.cpp:380', `${name} -> ${blobName}`)
          const id = this.blobs.length
          this.blobs.push(new Blob())
          this.blobNames.push(blobName)
          this.blobNeedBackward.push(false)
          this.blobIndex.set(blobName, id)
          slot.tops.push(this.blob(id))
          slot.topIds.push(id)
        }
        available.add(blobName)
        if (type === 'Input') this.inputBlobIndices.push(slot.topIds[j] ?? -1)
      })
      // SoftmaxWithLoss builds an internal Softmax through the layer factory; Caffe logs that too.
      if (type === 'SoftmaxWithLoss') this.log.info('layer_factory.hpp:77', `Creating layer ${name}`)
      try {
        layer.setUp(slot.bottoms, slot.tops)
      } catch (err) {
        failWith(err)
      }
      const weights = lossWeightsOf(param, layer, slot.tops.length)
      if (weights === undefined) fail('loss_weight must be unspecified or specified once per top blob.')
      slot.lossWeights.push(...(weights ?? []))
      this.log.info('net.cpp:122', `Setting up ${name}`)
      slot.tops.forEach((top, j) => {
        const w = slot.lossWeights[j] ?? 0
        const id = slot.topIds[j] ?? -1
        this.blobLossWeights[id] = w
        this.log.info('net.cpp:129', `Top shape: ${top.shapeString()}`)
        if (w !== 0) this.log.info('net.cpp:132', `    with loss weight ${formatCxx(w)}`)
        memoryUsed += top.count
      })
      this.log.info('net.cpp:137', `Memory required for data: ${memoryUsed * 4}`)

      if (param.param.length > layer.blobs.length) fail(`Too many params specified for layer ${name}`)
      layer.blobs.forEach((blob, j) => {
        const spec = param.param[j]
        // Blobs the layer maintains itself (BatchNorm statistics) behave as lr_mult 0, as in Caffe.
        const fixed = layer.fixedParams.includes(j)
        const lrMult = fixed ? 0 : (spec?.lr_mult ?? 1)
        const decayMult = spec?.decay_mult ?? 1
        needBackward ||= lrMult !== 0
        layer.paramPropagateDown[j] = lrMult !== 0
        if (spec?.name !== undefined && spec.name !== '' && this.paramNames.has(spec.name)) {
          fail(`sharing parameter '${spec.name}' between layers is not supported by this engine`)
        }
        if (spec?.name !== undefined && spec.name !== '') this.paramNames.add(spec.name)
        this.learnableParams.push({ blob, lrMult, decayMult })
      })
      slot.needBackward = needBackward
      if (needBackward) for (const id of slot.topIds) this.blobNeedBackward[id] = true
    }

    this.resolveBackward(input.force_backward ?? false)
    for (const blobName of [...available].sort()) {
      this.log.info('net.cpp:242', `This network produces output ${blobName}`)
      this.outputBlobIndices.push(this.blobIndex.get(blobName) ?? -1)
    }
    this.log.info('net.cpp:255', 'Network initialization done.')
  }

  /** Walks the net backwards like Caffe: only layers under a loss need backward. */
  private resolveBackward (forceBackward: boolean): void {
    const underLoss = new Set<string>()
    const skipBackprop = new Set<string>()
    for (let i = this.slots.length - 1; i >= 0; i--) {
      const slot = this.slots[i]
      if (slot === undefined) continue
      let contributesLoss = false
      let skipPropagateDown = true
      slot.topIds.forEach((id, j) => {
        const blobName = this.blobNames[id] ?? ''
        if ((slot.lossWeights[j] ?? 0) !== 0 || underLoss.has(blobName)) contributesLoss = true
        if (!skipBackprop.has(blobName)) skipPropagateDown = false
      })
      if (slot.needBackward && skipPropagateDown) {
        slot.needBackward = false
        slot.bottomNeedBackward.fill(false)
      }
      if (!contributesLoss) slot.needBackward = false
      const name = slot.param.name ?? ''
      if (slot.needBackward) this.log.info('net.cpp:198', `${name} needs backward computation.`)
      else this.log.info('net.cpp:200', `${name} does not need backward computation.`)
      slot.bottomIds.forEach((id, j) => {
        const blobName = this.blobNames[id] ?? ''
        if (contributesLoss) underLoss.add(blobName)
        else slot.bottomNeedBackward[j] = false
        if (slot.bottomNeedBackward[j] !== true) skipBackprop.add(blobName)
      })
    }
    if (!forceBackward) return
    for (const slot of this.slots) {
      slot.needBackward = true
      slot.bottomIds.forEach((id, j) => {
        const allow = slot.layer.allowForceBackward(j)
        slot.bottomNeedBackward[j] = (slot.bottomNeedBackward[j] ?? false) || allow
        this.blobNeedBackward[id] = (this.blobNeedBackward[id] ?? false) || (slot.bottomNeedBackward[j] ?? false)
      })
      slot.layer.blobs.forEach((_, j) => {
        if (!slot.layer.fixedParams.includes(j)) slot.layer.paramPropagateDown[j] = true
      })
    }
  }

  get layers (): Layer[] { return this.slots.map((s) => s.layer) }
  get layerNames (): string[] { return this.slots.map((s) => s.param.name ?? '') }
  get inputBlobs (): Blob[] { return this.inputBlobIndices.map((i) => this.blob(i)) }
  get outputBlobs (): Blob[] { return this.outputBlobIndices.map((i) => this.blob(i)) }
  /** Whether each layer runs backward, in layer order (for tests and `time`). */
  get layerNeedBackward (): boolean[] { return this.slots.map((s) => s.needBackward) }

  blobByName (name: string): Blob | undefined {
    const i = this.blobIndex.get(name)
    return i === undefined ? undefined : this.blobs[i]
  }

  layerByName (name: string): Layer | undefined {
    const i = this.layerIndex.get(name)
    return i === undefined ? undefined : this.slots[i]?.layer
  }

  /** Runs every layer's forward (awaiting data layers' prefetch first) and returns the weighted loss. */
  async forward (): Promise<number> {
    let loss = 0
    for (const slot of this.slots) {
      if (slot.layer.prefetch !== undefined) await slot.layer.prefetch()
      slot.layer.reshape(slot.bottoms, slot.tops)
      slot.layer.forward(slot.bottoms, slot.tops)
      loss += this.layerLoss(slot)
    }
    return loss
  }

  /** Forward then backward; the parameter diffs receive this batch's gradient (added to what is there). */
  async forwardBackward (): Promise<number> {
    const loss = await this.forward()
    this.backward()
    return loss
  }

  backward (): void {
    for (let i = this.slots.length - 1; i >= 0; i--) {
      const slot = this.slots[i]
      if (slot === undefined || !slot.needBackward) continue
      slot.layer.backward(slot.tops, slot.bottomNeedBackward, slot.bottoms)
    }
  }

  /** Forward/backward of one layer by index, for the `time` command. */
  async forwardLayer (i: number): Promise<void> {
    const slot = this.slots[i]
    if (slot === undefined) return
    if (slot.layer.prefetch !== undefined) await slot.layer.prefetch()
    slot.layer.reshape(slot.bottoms, slot.tops)
    slot.layer.forward(slot.bottoms, slot.tops)
    this.layerLoss(slot)
  }

  backwardLayer (i: number): void {
    const slot = this.slots[i]
    if (slot === undefined || !slot.needBackward) return
    slot.layer.backward(slot.tops, slot.bottomNeedBackward, slot.bottoms)
  }

  clearParamDiffs (): void {
    for (const p of this.learnableParams) p.blob.diff.fill(0)
  }

  /**
   * Caffe's CopyTrainedLayersFrom: weights are matched by layer name; source layers the net
   * does not have are skipped (and logged); a blob count or shape that differs is an error.
   */
  copyTrainedLayersFrom (source: NetParameter): void {
    const layers = (source.layers.length > 0 ? upgradeNetParameter(source).value : source).layer
    for (const src of layers) {
      const name = src.name ?? ''
      const target = this.slots.find((s) => (s.param.name ?? '') === name)
      if (target === undefined) {
        this.log.info('net.cpp:744', `Ignoring source layer ${name}`)
        continue
      }
      const targetBlobs = target.layer.blobs
      if (targetBlobs.length !== src.blobs.length) {
        throw new WeightsMismatchError(`Check failed: target_blobs.size() == source_layer.blobs_size() (${targetBlobs.length} vs. ${src.blobs.length}) Incompatible number of blobs for layer ${name}`)
      }
      targetBlobs.forEach((blob, j) => {
        const proto = src.blobs[j]
        if (proto === undefined) return
        if (!shapeEquals(blob, proto)) {
          throw new WeightsMismatchError(`Cannot copy param ${j} weights from layer '${name}'; shape mismatch.  Source param shape is ${protoShapeString(proto)}; target param shape is ${blob.shapeString()}. To learn this layer's parameters from scratch rather than copying from a saved net, rename the layer.`)
        }
        copyFromProto(blob, proto)
      })
    }
  }

  /** Makes this (test) net use the other net's current weights, layer by layer name. */
  shareTrainedLayersWith (other: Net): void {
    other.slots.forEach((src) => {
      const name = src.param.name ?? ''
      const i = this.layerIndex.get(name)
      const target = i === undefined ? undefined : this.slots[i]
      if (target === undefined) return
      const tb = target.layer.blobs
      const sb = src.layer.blobs
      if (tb.length !== sb.length) {
        throw new WeightsMismatchError(`Check failed: target_blobs.size() == source_layer->blobs().size() (${tb.length} vs. ${sb.length}) Incompatible number of blobs for layer ${name}`)
      }
      tb.forEach((blob, j) => {
        const s = sb[j]
        if (s === undefined) return
        if (blob.shape.length !== s.shape.length || blob.shape.some((d, k) => d !== s.shape[k])) {
          throw new WeightsMismatchError(`Cannot share param ${j} weights from layer '${name}'; shape mismatch.  Source param shape is ${s.shapeString()}; target param shape is ${blob.shapeString()}`)
        }
        if (blob !== s) blob.data.set(s.data)
      })
    })
  }

  /** The net as a NetParameter with every layer's blobs, as written to a .caffemodel. */
  toProto (writeDiff = false): NetParameter {
    return createMessage('NetParameter', {
      name: this.name,
      layer: this.slots.map((s) => ({ ...s.param, blobs: s.layer.blobs.map((b) => blobToProto(b, writeDiff)) }))
    })
  }

  /** States of the resumable layers, keyed by layer index, for snapshots. */
  saveLayerStates (): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    this.slots.forEach((s, i) => { if (isResumable(s.layer)) out[String(i)] = s.layer.saveState() })
    return out
  }

  restoreLayerStates (states: Record<string, unknown>): void {
    this.slots.forEach((s, i) => {
      const st = states[String(i)]
      if (st !== undefined && isResumable(s.layer)) s.layer.restoreState(st)
    })
  }

  async close (): Promise<void> {
    for (const s of this.slots) await s.layer.close?.()
  }

  private layerLoss (slot: LayerSlot): number {
    let loss = 0
    for (let j = 0; j < slot.tops.length; j++) {
      const w = slot.lossWeights[j] ?? 0
      if (w === 0) continue
      const top = slot.tops[j]
      if (top === undefined) continue
      let dot = 0
      const d = top.data
      for (let k = 0; k < d.length; k++) dot += d[k] ?? 0
      loss += w * dot
      // The loss weight rides in the top diff for backward (Caffe's SetLossWeights).
      top.diff.fill(w)
    }
    return loss
  }

  private blob (id: number): Blob {
    const b = this.blobs[id]
    if (b === undefined) throw new Error(`internal: blob ${id} does not exist`)
    return b
  }
}

/** Loss weight per top: explicit `loss_weight`, else the layer's default (1 on a loss layer's top 0); undefined if malformed. */
function lossWeightsOf (param: LayerParameter, layer: Layer, tops: number): number[] | undefined {
  if (param.loss_weight.length > 0) {
    if (param.loss_weight.length !== tops) return undefined
    return [...param.loss_weight]
  }
  return Array.from({ length: tops }, (_, j) => layer.defaultLossWeight(j))
}

/** `file:line` of a layer parsed from prototxt (positions survive the V1 upgrade). */
function defaultLocate (layer: LayerParameter): string | undefined {
  const p = positionOf(layer)
  if (p === undefined) return undefined
  return p.file === undefined ? `line ${p.line}` : `${p.file}:${p.line}`
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
