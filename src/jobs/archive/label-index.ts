import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ArchiveError } from './archive-error.js'
import { compareNames } from './archive-layout.js'
import { quoteName } from './entry-path.js'

/** Label name ↔ Caffe label number, fixed by the training set: index = position in sorted order. */
export interface LabelMap {
  readonly labels: readonly string[]
  /** The number of a label, or undefined if training never saw it. */
  indexOf: (label: string) => number | undefined
}

// Caffe's list reader splits path from label at a space; control characters would split lines.
// eslint-disable-next-line no-control-regex
const UNLISTABLE = /[\s\u0000-\u001f\u007f]/

/** One label map from the training set's labels (any order, duplicates allowed). */
export function createLabelMap (trainingLabels: Iterable<string>): LabelMap {
  const labels = [...new Set(trainingLabels)].sort(compareNames)
  const index = new Map(labels.map((l, i) => [l, i]))
  for (const l of labels) {
    if (l === '' || l.includes('/') || UNLISTABLE.test(l)) throw new ArchiveError('bad-name', `label ${quoteName(l)} cannot be written to an image list file`)
  }
  return { labels, indexOf: (label) => index.get(label) }
}

function splitPath (file: string): [string, string] {
  const slash = file.indexOf('/')
  const label = file.slice(0, slash)
  const name = file.slice(slash + 1)
  if (slash <= 0 || name === '' || name.includes('/')) throw new Error(`image path ${quoteName(file)} is not <label>/<file>`)
  if (UNLISTABLE.test(file)) {
    throw new ArchiveError('bad-name', `${quoteName(file)} contains whitespace; Caffe's image list files separate path and label with a space, so rename it`)
  }
  return [label, name]
}

/** Label names of `<label>/<file>` paths. */
export function labelsOf (files: Iterable<string>): string[] {
  const out = new Set<string>()
  for (const f of files) out.add(splitPath(f)[0])
  return [...out]
}

export type ImageListOrder = 'sorted' | 'interleaved'

/** Round-robin over labels, so an ImageData layer without `shuffle` still sees mixed batches. */
function interleave (files: readonly string[]): string[] {
  const byLabel = new Map<string, string[]>()
  for (const f of [...files].sort(compareNames)) {
    const label = splitPath(f)[0]
    let list = byLabel.get(label)
    if (list === undefined) byLabel.set(label, (list = []))
    list.push(f)
  }
  const queues = [...byLabel.keys()].sort(compareNames).map((l) => byLabel.get(l) as string[])
  const out: string[] = []
  for (let i = 0; out.length < files.length; i++) {
    for (const q of queues) if (i < q.length) out.push(q[i] as string)
  }
  return out
}

/**
 * Caffe ImageData list text: one `<prefix>/<label>/<file> <n>` line per image. A label that
 * the map does not know is an ArchiveError naming it (`side` says which set it came from).
 */
export function formatImageList (files: readonly string[], labelMap: LabelMap, options: { prefix: string, side: string, order?: ImageListOrder }): string {
  const ordered = options.order === 'interleaved' ? interleave(files) : [...files].sort(compareNames)
  const lines: string[] = []
  for (const file of ordered) {
    const [label] = splitPath(file)
    const n = labelMap.indexOf(label)
    if (n === undefined) {
      throw new ArchiveError('label-mismatch', `the ${options.side} set has label ${quoteName(label)} (${quoteName(file)}), which the training set does not have`)
    }
    lines.push(`${options.prefix}/${file} ${n}\n`)
  }
  return lines.join('')
}

export interface ImageListsOptions {
  /** Directory that receives the list files; paths inside them are relative to it. */
  workDir: string
  /** `<label>/<file>` paths of each side, as extractArchive returns them. */
  training: readonly string[]
  test: readonly string[]
  trainingPrefix?: string
  testPrefix?: string
  trainingListFile?: string
  testListFile?: string
  order?: ImageListOrder
}

export interface ImageLists {
  labels: readonly string[]
  trainingList: string
  testList: string
  trainingLines: number
  testLines: number
}

/**
 * Writes `training.txt` and `testing.txt` (the original's names and line format) from ONE label
 * map built from the training set, so a label has the same number on both sides whatever the
 * archive order. Defaults: prefixes `training-data` and `test-data`, lines in sorted order.
 */
export async function writeImageLists (options: ImageListsOptions): Promise<ImageLists> {
  const labelMap = createLabelMap(labelsOf(options.training))
  const order = options.order ?? 'sorted'
  const training = formatImageList(options.training, labelMap, { prefix: options.trainingPrefix ?? 'training-data', side: 'training', order })
  const test = formatImageList(options.test, labelMap, { prefix: options.testPrefix ?? 'test-data', side: 'test', order })
  const trainingList = path.join(options.workDir, options.trainingListFile ?? 'training.txt')
  const testList = path.join(options.workDir, options.testListFile ?? 'testing.txt')
  await writeFile(trainingList, training)
  await writeFile(testList, test)
  return { labels: labelMap.labels, trainingList, testList, trainingLines: options.training.length, testLines: options.test.length }
}
