import { createMessage, type NetState } from '../proto/caffe.js'

/** The parts of caffe.NetState the filter reads (phase as the enum name, Caffe's defaults when absent). */
export interface NetStateLike {
  readonly phase?: 'TRAIN' | 'TEST' | undefined
  readonly level?: number | undefined
  readonly stage?: readonly string[] | undefined
}

/** caffe.NetStateRule: every field that is set must hold for the rule to be met. */
export interface NetStateRuleLike {
  readonly phase?: 'TRAIN' | 'TEST' | undefined
  readonly min_level?: number | undefined
  readonly max_level?: number | undefined
  readonly stage?: readonly string[] | undefined
  readonly not_stage?: readonly string[] | undefined
}

export interface RuleFilteredLayer {
  readonly name?: string | undefined
  readonly include?: readonly NetStateRuleLike[] | undefined
  readonly exclude?: readonly NetStateRuleLike[] | undefined
}

/** A layer that gives both include and exclude rules; Caffe refuses those. */
export class NetStateRuleError extends Error {
  readonly code = 'ET_NET_STATE_RULE'
  constructor (message: string) {
    super(message)
    this.name = 'NetStateRuleError'
  }
}

// Caffe prints phases by their enum number in these messages.
const phaseNumber = (p: 'TRAIN' | 'TEST'): number => p === 'TRAIN' ? 0 : 1

/**
 * Caffe's Net::StateMeetsRule. `note` receives the same explanation Caffe logs (net.cpp:294 …)
 * when a rule is not met, so the caller can print it with the right tag.
 */
export function stateMeetsRule (state: NetStateLike, rule: NetStateRuleLike, layerName: string,
  note: (line: number, message: string) => void = () => {}): boolean {
  const phase = state.phase ?? 'TEST'
  const level = state.level ?? 0
  const stages = state.stage ?? []
  if (rule.phase !== undefined && rule.phase !== phase) {
    note(294, `The NetState phase (${phaseNumber(phase)}) differed from the phase (${phaseNumber(rule.phase)}) specified by a rule in layer ${layerName}`)
    return false
  }
  if (rule.min_level !== undefined && level < rule.min_level) {
    note(304, `The NetState level (${level}) is above the min_level (${rule.min_level}) specified by a rule in layer ${layerName}`)
    return false
  }
  if (rule.max_level !== undefined && level > rule.max_level) {
    note(314, `The NetState level (${level}) is above the max_level (${rule.max_level}) specified by a rule in layer ${layerName}`)
    return false
  }
  for (const s of rule.stage ?? []) {
    if (!stages.includes(s)) {
      note(330, `The NetState did not contain stage '${s}' specified by a rule in layer ${layerName}`)
      return false
    }
  }
  for (const s of rule.not_stage ?? []) {
    if (stages.includes(s)) {
      note(345, `The NetState contained a not_stage '${s}' specified by a rule in layer ${layerName}`)
      return false
    }
  }
  return true
}

/**
 * Caffe's Net::FilterNet: a layer with no include rules is kept unless an exclude rule is met;
 * a layer with include rules is kept only if one of them is met.
 */
export function filterLayers<L extends RuleFilteredLayer> (layers: readonly L[], state: NetStateLike,
  note?: (line: number, message: string) => void): L[] {
  const kept: L[] = []
  for (const layer of layers) {
    const name = layer.name ?? ''
    const include = layer.include ?? []
    const exclude = layer.exclude ?? []
    if (include.length > 0 && exclude.length > 0) {
      throw new NetStateRuleError(`Specify either include rules or exclude rules; not both. (layer '${name}')`)
    }
    let included = include.length === 0
    for (let j = 0; included && j < exclude.length; j++) {
      const rule = exclude[j]
      if (rule !== undefined && stateMeetsRule(state, rule, name, note)) included = false
    }
    for (let j = 0; !included && j < include.length; j++) {
      const rule = include[j]
      if (rule !== undefined && stateMeetsRule(state, rule, name, note)) included = true
    }
    if (included) kept.push(layer)
  }
  return kept
}

/**
 * protobuf MergeFrom for NetState: set scalars of `over` win, stages are appended. Caffe builds a
 * net's state as {phase} ← the net's own state ← the solver's train_state/test_state this way.
 */
export function mergeNetState (base: Partial<NetState>, over: Partial<NetState> | undefined): NetState {
  const out: NetState = createMessage('NetState', { stage: [...(base.stage ?? [])] })
  if (base.phase !== undefined) out.phase = base.phase
  if (base.level !== undefined) out.level = base.level
  if (over === undefined) return out
  if (over.phase !== undefined) out.phase = over.phase
  if (over.level !== undefined) out.level = over.level
  out.stage.push(...(over.stage ?? []))
  return out
}
