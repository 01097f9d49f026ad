import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import sharp from 'sharp'
import type { BlobStore } from '../../../blobstore/blob-store.js'
import { keyFromBlobUri } from '../../../blobstore/blob-uri.js'
import type { Dataset } from '../../../models/dataset.js'
import type { Solver } from '../../../models/solver.js'
import { MAX_PROTOTXT_BYTES } from '../../../models/solver.js'
import { PrototxtError } from '../../engine/proto/errors.js'
import { PrototxtRewriteError, rewriteNetPrototxt, rewriteSolverPrototxt } from '../../engine/proto/prototxt-rewrite.js'
import type { DataLayerReport, DataSource } from '../../engine/proto/prototxt-rewrite.js'
import { lineOf, printTextFormat } from '../../engine/proto/text-format.js'
import { NotFoundError, PermanentJobError } from '../../lib/errors.js'
import { createLabelMap, extractArchive, formatImageList } from '../archive/index.js'
import type { ArchiveLimits, ExtractResult } from '../archive/index.js'
import type { CaffeCommand } from '../caffe-command.js'
import { explainCaffeFailure, netLineMapper } from './caffe-failure.js'
import type { KnownFile } from './caffe-failure.js'
import { readBlobText } from './blob-files.js'

/** Work-dir names, relative because Caffe runs with the work dir as its cwd (see the resume note in training-runner.ts). */
export const WORK_FILES = {
  solver: 'solver.prototxt',
  net: 'solver-net.prototxt',
  snapshotPrefix: 'snapshot',
  trainingData: 'training-data',
  testData: 'test-data',
  trainingList: 'training.txt',
  testList: 'testing.txt',
  trainingDb: 'training-lmdb',
  testDb: 'test-lmdb'
} as const

export interface TrainingWorkspace {
  solverFile: string
  maxIter: number
  /** Label names by class number, or null for a database dataset (its labels are numbers). */
  labels: string[] | null
  /** How the data reaches the net, for the log. */
  feed: 'image-lists' | 'converted-lmdb' | 'database'
  /** The user's files by work-dir name, for error messages. */
  files: Record<string, KnownFile>
}

export interface WorkspaceOptions {
  workDir: string
  blobs: BlobStore
  caffe: CaffeCommand
  solver: Solver
  dataset: Dataset
  signal: AbortSignal
  /** Solver mode written into the solver: GPU only when this worker was given --gpu for a real Caffe. */
  solverMode: 'CPU' | 'GPU'
  archiveLimits?: Partial<ArchiveLimits>
  /** A line for the job's log (the runner's own notes, prefixed there). */
  say: (line: string) => void
  /** Output of the engine tools run while preparing (convert_imageset). */
  output: { onStdout: (chunk: Buffer) => void, onStderr: (chunk: Buffer) => void }
}

/**
 * Materialises a training job's work dir: the user's net and solver rewritten to read the
 * job's copy of the dataset and to snapshot into the work dir, and the dataset itself —
 * image folders with Caffe list files from ONE label map (ImageData nets), the same images
 * converted to LMDB by the engine's convert_imageset (Data nets, like BVLC's lenet), or an
 * uploaded LMDB/LevelDB used as is. Everything a user can get wrong fails with a
 * PermanentJobError that says what to change.
 */
export async function prepareTrainingWorkspace (o: WorkspaceOptions): Promise<TrainingWorkspace> {
  const solverText = await readBlobText(o.blobs, o.solver['specification-url'], 'the solver prototxt', MAX_PROTOTXT_BYTES * 4, o.signal)
  const netText = await readBlobText(o.blobs, o.solver['specification-net-url'], 'the net prototxt', MAX_PROTOTXT_BYTES * 4, o.signal)
  const kind = dataLayerKind(userFile(() => rewriteNetPrototxt(netText, {}), 'net').dataLayers)

  const training = await extractPart(o, 'training', WORK_FILES.trainingData)
  const test = await extractPart(o, 'test', WORK_FILES.testData)
  if (training.format !== test.format) {
    throw new PermanentJobError(`the dataset's training part is ${describeFormat(training)} but its test part is ${describeFormat(test)}; both must be the same kind`)
  }

  let sources: { TRAIN: DataSource, TEST: DataSource }
  let labels: string[] | null = null
  let feed: TrainingWorkspace['feed']
  if (training.format === 'images-tar-gz' && test.format === 'images-tar-gz') {
    labels = await writeLists(o, training, test)
    if (kind === 'ImageData') {
      feed = 'image-lists'
      sources = { TRAIN: { source: WORK_FILES.trainingList, rootFolder: '' }, TEST: { source: WORK_FILES.testList, rootFolder: '' } }
    } else {
      feed = 'converted-lmdb'
      const gray = await isGray(o.workDir, training)
      o.say(`the net reads Data layers (LMDB): converting the dataset's images with convert_imageset${gray ? ' --gray (the images have one channel)' : ''}`)
      await convertImages(o, gray, WORK_FILES.trainingList, WORK_FILES.trainingDb, 'training')
      await convertImages(o, gray, WORK_FILES.testList, WORK_FILES.testDb, 'test')
      sources = { TRAIN: { source: WORK_FILES.trainingDb, backend: 'LMDB' }, TEST: { source: WORK_FILES.testDb, backend: 'LMDB' } }
    }
  } else {
    if (kind === 'ImageData') {
      throw new PermanentJobError(`the dataset holds ${describeFormat(training)} databases, but the net reads its data with ImageData layers (image list files); use Data layers (type: "Data" with backend: ${training.format === 'lmdb' ? 'LMDB' : 'LEVELDB'}) for a database dataset`)
    }
    feed = 'database'
    const backend = training.format === 'lmdb' ? 'LMDB' : 'LEVELDB'
    sources = { TRAIN: { source: WORK_FILES.trainingData, backend }, TEST: { source: WORK_FILES.testData, backend } }
    labels = o.dataset.labels
  }

  const net = userFile(() => rewriteNetPrototxt(netText, sources), 'net')
  const userLayers = [...net.net.layers, ...net.net.layer].map((layer) => lineOf(layer))
  await writeFile(path.join(o.workDir, WORK_FILES.net), net.text)
  const solver = userFile(() => rewriteSolverPrototxt(solverText, { net: WORK_FILES.net, snapshotPrefix: WORK_FILES.snapshotPrefix, solverMode: o.solverMode }), 'solver')
  // The pipeline needs the final model as a binary .caffemodel: force what would prevent that.
  let solverOut = solver.text
  if (!solver.summary.snapshotAfterTrain || solver.summary.snapshotFormat !== 'BINARYPROTO') {
    solver.solver.snapshot_after_train = true
    solver.solver.snapshot_format = 'BINARYPROTO'
    solverOut = printTextFormat('SolverParameter', solver.solver)
    o.say('the solver was set to snapshot_after_train: true and snapshot_format: BINARYPROTO so that training leaves a .caffemodel')
  }
  await writeFile(path.join(o.workDir, WORK_FILES.solver), solverOut)
  return {
    solverFile: WORK_FILES.solver,
    maxIter: solver.summary.maxIter,
    labels,
    feed,
    files: {
      [WORK_FILES.net]: { label: 'the net prototxt', userLine: netLineMapper(net.text, userLayers) },
      [WORK_FILES.solver]: { label: 'the solver prototxt' },
      [WORK_FILES.trainingList]: { label: 'the training image list' },
      [WORK_FILES.testList]: { label: 'the test image list' }
    }
  }
}

/** Runs a rewrite of the user's file, turning its errors into a message about that file. */
function userFile<T> (work: () => T, which: 'net' | 'solver'): T {
  try {
    return work()
  } catch (err) {
    if (err instanceof PrototxtError) {
      throw new PermanentJobError(`the ${which} prototxt does not parse (line ${err.line}, column ${err.column}): ${err.problem}`, { cause: err })
    }
    if (err instanceof PrototxtRewriteError) throw new PermanentJobError(`the ${which} prototxt cannot be used: ${err.message}`, { cause: err })
    throw err
  }
}

const WRITES_FILES = new Set(['HDF5Output'])

/** Which data layer kind feeds the net; refuses nets the pipeline cannot serve safely. */
function dataLayerKind (layers: readonly DataLayerReport[]): 'Data' | 'ImageData' {
  const fed = layers.filter((l) => (l.kind === 'Data' || l.kind === 'ImageData') && l.phases.length > 0)
  const kinds = new Set(fed.map((l) => l.kind))
  const writer = layers.find((l) => WRITES_FILES.has(l.kind))
  if (writer !== undefined) throw new PermanentJobError(`the net prototxt has a ${writer.kind} layer (line ${writer.line ?? '?'}), which writes files on the worker; remove it`)
  if (kinds.size === 0) throw new PermanentJobError('the net prototxt has no Data or ImageData layer in the TRAIN or TEST phase to read the dataset')
  if (kinds.size > 1) throw new PermanentJobError('the net prototxt mixes Data and ImageData layers; use one kind for both phases')
  // A mean file would have to exist on the worker; the job pipeline has none to offer.
  const withMean = fed.find((l) => l.originalMeanFile !== undefined && l.originalMeanFile !== '')
  if (withMean !== undefined) {
    throw new PermanentJobError(`the net prototxt's data layer ${withMean.name === undefined ? '' : `'${withMean.name}' `}(line ${withMean.line ?? '?'}) uses mean_file "${withMean.originalMeanFile ?? ''}", which does not exist on the worker; use transform_param { mean_value: … } instead`)
  }
  return [...kinds][0] === 'ImageData' ? 'ImageData' : 'Data'
}

async function extractPart (o: WorkspaceOptions, side: 'training' | 'test', dir: string): Promise<ExtractResult> {
  const part = o.dataset[side]
  if (part.url === null) throw new PermanentJobError(`the dataset ${o.dataset._id} has no ${side} archive`)
  let key: string
  try {
    key = keyFromBlobUri(part.url)
  } catch (err) {
    throw new PermanentJobError(`the dataset's ${side} archive has an unusable location`, { cause: err })
  }
  o.say(`extracting the ${side} archive ${part.url}`)
  try {
    const input = await o.blobs.get(key, { signal: o.signal })
    return await extractArchive(input, path.join(o.workDir, dir), { signal: o.signal, ...(o.archiveLimits === undefined ? {} : { limits: o.archiveLimits }) })
  } catch (err) {
    if (err instanceof NotFoundError) throw new PermanentJobError(`the dataset's ${side} archive (${part.url}) is missing from the blob store`, { cause: err })
    if (err instanceof PermanentJobError) throw new PermanentJobError(`the dataset's ${side} archive cannot be used: ${err.message}`, { cause: err })
    throw err
  }
}

function describeFormat (r: ExtractResult): string {
  return r.format === 'images-tar-gz' ? 'image folders' : r.format === 'lmdb' ? 'LMDB' : 'LevelDB'
}

/** training.txt / testing.txt from one label map: the dataset's labels (its training labels). */
async function writeLists (o: WorkspaceOptions, training: Extract<ExtractResult, { format: 'images-tar-gz' }>, test: Extract<ExtractResult, { format: 'images-tar-gz' }>): Promise<string[]> {
  const map = createLabelMap(o.dataset.labels ?? training.labels)
  // Interleaved: Data layers read an LMDB in order and ImageData without shuffle reads the list
  // in order, so label-sorted lists would give single-class batches.
  const trainingList = formatImageList(training.files, map, { prefix: WORK_FILES.trainingData, side: 'training', order: 'interleaved' })
  const testList = formatImageList(test.files, map, { prefix: WORK_FILES.testData, side: 'test', order: 'interleaved' })
  await writeFile(path.join(o.workDir, WORK_FILES.trainingList), trainingList)
  await writeFile(path.join(o.workDir, WORK_FILES.testList), testList)
  o.say(`image lists written: ${training.files.length} training and ${test.files.length} test images, ${map.labels.length} labels (${map.labels.slice(0, 10).join(', ')}${map.labels.length > 10 ? ', …' : ''})`)
  return [...map.labels]
}

/** Single-channel images (greyscale, with or without alpha) convert with --gray; a sample decides. */
async function isGray (workDir: string, training: Extract<ExtractResult, { format: 'images-tar-gz' }>): Promise<boolean> {
  const step = Math.max(1, Math.floor(training.files.length / 16))
  for (let i = 0; i < training.files.length; i += step) {
    const file = path.join(workDir, WORK_FILES.trainingData, training.files[i] ?? '')
    const meta = await sharp(file).metadata().catch(() => undefined)
    if (meta?.channels !== undefined && meta.channels > 2) return false
  }
  return true
}

async function convertImages (o: WorkspaceOptions, gray: boolean, list: string, db: string, side: string): Promise<void> {
  await mkdir(o.workDir, { recursive: true })
  const run = o.caffe.engine('convert_imageset', [...(gray ? ['--gray'] : []), '--backend=lmdb', './', list, db], { cwd: o.workDir, signal: o.signal, ...o.output })
  const exit = await run.exited
  if (exit.code !== 0) {
    throw new PermanentJobError(explainCaffeFailure(exit, { what: `converting the ${side} images to LMDB`, workDir: o.workDir, files: {} }))
  }
}
