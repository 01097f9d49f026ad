import { readFile } from 'node:fs/promises'
import { ListFileError, DataShapeError } from './errors.js'
import { readImage } from './image.js'
import type { ChwImage } from './image.js'

/** One line of an ImageData/convert_imageset list: `path label`. */
export interface ImageListEntry {
  path: string
  label: number
  /** 1-based line number in the list file, for error messages. */
  line: number
}

/**
 * Parses a list file's text. As in Caffe the label is after the LAST space, so paths may contain
 * spaces; blank lines are skipped. A line without a label or with a label that is not a 32-bit
 * integer is a ListFileError naming the file and line (Caffe would silently read label 0).
 */
export function parseImageList (text: string, file: string): ImageListEntry[] {
  const out: ImageListEntry[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, '').trimEnd()
    if (line.trim() === '') continue
    const pos = Math.max(line.lastIndexOf(' '), line.lastIndexOf('\t'))
    if (pos <= 0) throw new ListFileError(file, i + 1, `expected "<path> <label>", got "${clip(line)}"`)
    const path = line.slice(0, pos).trimEnd()
    const raw = line.slice(pos + 1)
    if (!/^[+-]?\d+$/.test(raw) || Number(raw) > 2147483647 || Number(raw) < -2147483648) {
      throw new ListFileError(file, i + 1, `label "${clip(raw)}" is not an integer`)
    }
    if (path === '') throw new ListFileError(file, i + 1, 'empty image path')
    out.push({ path, label: Number(raw), line: i + 1 })
  }
  return out
}

/** Reads and parses a list file; a missing file is a ListFileError. */
export async function readImageList (file: string): Promise<ImageListEntry[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ListFileError(file, 0, code === 'ENOENT' ? 'cannot open list file: no such file' : `cannot open list file: ${(err as Error).message}`)
  }
  return parseImageList(text, file)
}

/** Fisher–Yates shuffle driven by `random` (uniform in [0, 1)), so a seeded generator repeats it. */
export function shuffleInPlace<T> (items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)))
    const t = items[i] as T
    items[i] = items[j] as T
    items[j] = t
  }
}

/** Caffe joins root_folder and the listed path by plain concatenation; a missing '/' is added here. */
export function joinRoot (rootFolder: string, path: string): string {
  if (rootFolder === '' || rootFolder.endsWith('/') || path.startsWith('/')) return rootFolder + path
  return `${rootFolder}/${path}`
}

export interface ImageListSourceOptions {
  rootFolder?: string
  /** ImageDataParameter.is_color (default true): BGR, else one gray channel. */
  isColor?: boolean
  newHeight?: number
  newWidth?: number
  /** Shuffle at open and again at every wrap-around, with `random`. */
  shuffle?: boolean
  random?: () => number
  /** Images decoded concurrently by nextBatch (sharp runs them on libuv's thread pool). */
  concurrency?: number
  info?: (message: string) => void
  onRestart?: () => void
}

/** One labelled, decoded image. */
export interface LabelledImage {
  path: string
  label: number
  image: ChwImage
}

/**
 * The images of a list file, read in order forever like Caffe's ImageDataLayer: after the last
 * entry it starts over (reshuffling when `shuffle` is set). Missing or undecodable images throw
 * ImageDecodeError naming the file.
 */
export class ImageListSource {
  readonly file: string
  readonly entries: ImageListEntry[]
  private readonly options: ImageListSourceOptions
  private index = 0

  private constructor (file: string, entries: ImageListEntry[], options: ImageListSourceOptions) {
    this.file = file
    this.entries = entries
    this.options = options
  }

  static async open (file: string, options: ImageListSourceOptions = {}): Promise<ImageListSource> {
    const h = options.newHeight ?? 0
    const w = options.newWidth ?? 0
    if (!((h === 0 && w === 0) || (h > 0 && w > 0))) {
      throw new DataShapeError('Current implementation requires new_height and new_width to be set at the same time.')
    }
    options.info?.(`Opening file ${file}`)
    const entries = await readImageList(file)
    if (entries.length === 0) throw new ListFileError(file, 0, 'File is empty')
    const src = new ImageListSource(file, entries, options)
    if (options.shuffle === true) {
      options.info?.('Shuffling data')
      src.shuffle()
    }
    options.info?.(`A total of ${entries.length} images.`)
    return src
  }

  get count (): number {
    return this.entries.length
  }

  /** Caffe's rand_skip: start `n` entries in (n must be smaller than the list). */
  skip (n: number): void {
    if (n >= this.entries.length) throw new DataShapeError(`Not enough points to skip: ${n} of ${this.entries.length}`)
    this.index = n
  }

  /** The entry next() will read, without reading it. */
  peekEntry (): ImageListEntry {
    return this.entries[this.index] as ImageListEntry
  }

  async peek (): Promise<LabelledImage> {
    return this.load(this.peekEntry())
  }

  async next (): Promise<LabelledImage> {
    const entry = this.peekEntry()
    this.advance()
    return this.load(entry)
  }

  /** The next `n` images in list order, decoded `concurrency` at a time. */
  async nextBatch (n: number): Promise<LabelledImage[]> {
    const picked: ImageListEntry[] = []
    for (let i = 0; i < n; i++) {
      picked.push(this.peekEntry())
      this.advance()
    }
    const out = new Array<LabelledImage>(n)
    const width = Math.max(1, this.options.concurrency ?? 8)
    let cursor = 0
    const worker = async (): Promise<void> => {
      while (cursor < n) {
        const i = cursor++
        out[i] = await this.load(picked[i] as ImageListEntry)
      }
    }
    await Promise.all(Array.from({ length: Math.min(width, n) }, worker))
    return out
  }

  private advance (): void {
    this.index++
    if (this.index >= this.entries.length) {
      this.options.onRestart?.()
      this.index = 0
      if (this.options.shuffle === true) this.shuffle()
    }
  }

  private shuffle (): void {
    shuffleInPlace(this.entries, this.options.random ?? Math.random)
  }

  private async load (entry: ImageListEntry): Promise<LabelledImage> {
    const image = await readImage(joinRoot(this.options.rootFolder ?? '', entry.path), {
      mode: this.options.isColor === false ? 'gray' : 'color',
      height: this.options.newHeight,
      width: this.options.newWidth
    })
    return { path: entry.path, label: entry.label, image }
  }
}

function clip (s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}
