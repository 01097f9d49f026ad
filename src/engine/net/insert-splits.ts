/** The fields of a LayerParameter that split insertion reads and rewrites. */
export interface SplittableLayer {
  readonly name?: string | undefined
  readonly bottom: readonly string[]
  readonly top: readonly string[]
  readonly loss_weight: readonly number[]
}

/** Description of a Split layer to create; the caller turns it into its own LayerParameter. */
export interface SplitSpec {
  name: string
  bottom: string
  top: string[]
  lossWeight: number[]
}

/** A bottom names a blob that no earlier layer produced. Message as Caffe's insert_splits.cpp. */
export class UnknownBottomError extends Error {
  readonly code = 'ET_UNKNOWN_BOTTOM'
  readonly layer: string
  constructor (blob: string, layer: string, index: number) {
    super(`Unknown bottom blob '${blob}' (layer '${layer}', bottom index ${index})`)
    this.name = 'UnknownBottomError'
    this.layer = layer
  }
}

export const splitLayerName = (layer: string, blob: string, idx: number): string => `${blob}_${layer}_${idx}_split`
export const splitBlobName = (layer: string, blob: string, idx: number, k: number): string =>
  `${blob}_${layer}_${idx}_split_${k}`

/**
 * Caffe's InsertSplits: wherever one top feeds several bottoms (a top with a non-zero loss
 * weight counts as one more consumer), a Split layer is inserted right after the producer and
 * each consumer reads its own copy, so that the gradients from every consumer are summed.
 * Names follow Caffe (`label_mnist_1_split`, `ip2_ip2_0_split_1`) because they show in logs.
 */
export function insertSplits<L extends SplittableLayer> (layers: readonly L[], makeSplit: (spec: SplitSpec) => L): L[] {
  const key = (i: number, j: number): string => `${i}:${j}`
  const lastTop = new Map<string, [number, number]>()
  const bottomSource = new Map<string, [number, number]>()
  const consumers = new Map<string, number>()
  const lossWeightOf = new Map<string, number>()
  const nextSplitIdx = new Map<string, number>()

  layers.forEach((layer, i) => {
    layer.bottom.forEach((blob, j) => {
      const src = lastTop.get(blob)
      if (src === undefined) throw new UnknownBottomError(blob, layer.name ?? '', j)
      bottomSource.set(key(i, j), src)
      consumers.set(key(...src), (consumers.get(key(...src)) ?? 0) + 1)
    })
    layer.top.forEach((blob, j) => lastTop.set(blob, [i, j]))
    const lastLoss = Math.min(layer.loss_weight.length, layer.top.length)
    for (let j = 0; j < lastLoss; j++) {
      const blob = layer.top[j] ?? ''
      const src = lastTop.get(blob) ?? [i, j]
      const w = layer.loss_weight[j] ?? 0
      lossWeightOf.set(key(...src), w)
      if (w !== 0) consumers.set(key(...src), (consumers.get(key(...src)) ?? 0) + 1)
    }
  })

  const out: L[] = []
  layers.forEach((layer, i) => {
    const bottoms = layer.bottom.map((blob, j) => {
      const src = bottomSource.get(key(i, j))
      if (src === undefined) return blob
      const k = key(...src)
      if ((consumers.get(k) ?? 0) <= 1) return blob
      const producer = layers[src[0]]?.name ?? ''
      const idx = nextSplitIdx.get(k) ?? 0
      nextSplitIdx.set(k, idx + 1)
      return splitBlobName(producer, blob, src[1], idx)
    })
    let rewritten: L = { ...layer, bottom: bottoms }
    const splits: L[] = []
    layer.top.forEach((blob, j) => {
      const k = key(i, j)
      const count = consumers.get(k) ?? 0
      if (count <= 1) return
      const name = layer.name ?? ''
      const w = lossWeightOf.get(k) ?? 0
      const spec: SplitSpec = {
        name: splitLayerName(name, blob, j),
        bottom: blob,
        top: Array.from({ length: count }, (_, s) => splitBlobName(name, blob, j, s)),
        lossWeight: w !== 0 ? Array.from({ length: count }, (_, s) => (s === 0 ? w : 0)) : []
      }
      splits.push(makeSplit(spec))
      if (w !== 0) {
        // The loss now lives on the split's first output; the producer itself carries none.
        rewritten = { ...rewritten, loss_weight: [] }
        nextSplitIdx.set(k, (nextSplitIdx.get(k) ?? 0) + 1)
      }
    })
    out.push(rewritten, ...splits)
  })
  return out
}
