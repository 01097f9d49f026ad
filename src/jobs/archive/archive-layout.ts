import { ArchiveError } from './archive-error.js'
import { formatBytes } from './archive-limits.js'
import type { ArchiveLimits } from './archive-limits.js'
import { quoteName } from './entry-path.js'
import { IMAGE_FORMATS, IMAGE_FORMATS_TEXT } from './sniff.js'
import type { ImageFormat } from './sniff.js'

/** What an archive holds, decided once every entry has been seen. */
export type ArchiveLayoutResult =
  | {
    format: 'images-tar-gz'
    /** A single top-level folder that wraps the label folders (`mnist/<label>/<file>`), stripped. */
    wrapper: string | undefined
    /** Distinct label folder names, sorted by compareNames. */
    labels: string[]
    /** Images per label. */
    counts: Record<string, number>
    imageCount: number
    /** File names per label, sorted by compareNames: the input of a deterministic split. */
    files: ReadonlyMap<string, readonly string[]>
    imageFormats: Partial<Record<ImageFormat, number>>
  }
  | {
    format: 'lmdb' | 'leveldb'
    /** The folder holding the database relative to the archive root ('' = the root itself). */
    root: string
    /** File names inside root, sorted. */
    files: string[]
  }

/** Code-unit order: the same on every machine and locale, and digits before letters (0–9, A–Z). */
export function compareNames (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

const LMDB_FILE = /^(data|lock)\.mdb$/
const LEVELDB_FILE = /^(CURRENT|LOCK|LOG|LOG\.old|MANIFEST-\d+|\d+\.(ldb|sst|log))$/

/** Names an LMDB or LevelDB directory holds; such files may exceed the per-image size limit. */
export function isDatabaseFileName (name: string): boolean {
  return LMDB_FILE.test(name) || LEVELDB_FILE.test(name)
}

interface SeenFile {
  segments: readonly string[]
  image: ImageFormat | undefined
  sniffed: ImageFormat | undefined
}

const WHITESPACE = /\s/
const IMAGES_GO = 'images go in <label>/<file> (optionally inside one top-level folder)'

export interface ArchiveLayoutOptions {
  limits: ArchiveLimits
  /** Image formats accepted; default all of IMAGE_FORMATS. */
  imageFormats?: readonly ImageFormat[]
}

/**
 * Collects entries as they stream by and decides what the archive is: label folders of
 * images (optionally under one wrapper folder) or one LMDB/LevelDB directory. Problems that
 * no later entry can fix (too deep, a duplicate, images mixed with other files) throw at
 * once; the rest throw from finish(). Every error is an ArchiveError naming the entry.
 */
export class ArchiveLayout {
  readonly #limits: ArchiveLimits
  readonly #accept: ReadonlySet<ImageFormat>
  readonly #files: SeenFile[] = []
  readonly #filePaths = new Set<string>()
  readonly #dirs = new Set<string>()
  readonly #explicitDirs = new Map<string, readonly string[]>()
  #imageCount = 0
  #firstOther: SeenFile | undefined

  constructor (options: ArchiveLayoutOptions) {
    this.#limits = options.limits
    this.#accept = new Set(options.imageFormats ?? IMAGE_FORMATS)
  }

  /** Checks a file from its header alone, before its body is read. */
  checkFile (segments: readonly string[], size: number): void {
    const path = segments.join('/')
    if (segments.length >= 4) throw tooDeep(path)
    const name = segments[segments.length - 1] as string
    if (size > this.#limits.maxFileBytes && !isDatabaseFileName(name)) {
      throw new ArchiveError('file-too-large', `${quoteName(path)} is ${formatBytes(size)}, more than the ${formatBytes(this.#limits.maxFileBytes)} allowed for one image`)
    }
    if (this.#filePaths.has(path)) throw new ArchiveError('duplicate', `${quoteName(path)} appears twice in the archive`)
    if (this.#dirs.has(path)) throw new ArchiveError('duplicate', `${quoteName(path)} is both a folder and a file`)
    this.#checkAncestors(segments)
  }

  addDirectory (segments: readonly string[]): void {
    const path = segments.join('/')
    if (segments.length >= 3) throw tooDeep(`${path}/`)
    if (this.#filePaths.has(path)) throw new ArchiveError('duplicate', `${quoteName(path)} is both a folder and a file`)
    this.#checkAncestors(segments)
    for (let i = 1; i <= segments.length; i++) this.#dirs.add(segments.slice(0, i).join('/'))
    if (!this.#explicitDirs.has(path)) this.#explicitDirs.set(path, segments)
  }

  /** Records a file that passed checkFile, with the image format its first bytes showed. */
  addFile (segments: readonly string[], sniffed: ImageFormat | undefined): void {
    const image = sniffed !== undefined && this.#accept.has(sniffed) ? sniffed : undefined
    const file: SeenFile = { segments, image, sniffed }
    this.#files.push(file)
    this.#filePaths.add(segments.join('/'))
    for (let i = 1; i < segments.length; i++) this.#dirs.add(segments.slice(0, i).join('/'))
    // A database never holds images, so images plus anything else is wrong whatever comes next.
    if (image !== undefined) {
      this.#imageCount++
      if (this.#firstOther !== undefined) throw this.#notAnImage(this.#firstOther)
    } else {
      if (this.#imageCount > 0) throw this.#notAnImage(file)
      this.#firstOther ??= file
    }
  }

  finish (): ArchiveLayoutResult {
    if (this.#files.length === 0) {
      throw new ArchiveError('empty', this.#explicitDirs.size > 0 ? 'the archive holds only empty folders, no files' : 'the archive is empty (it holds no files)')
    }
    return this.#imageCount > 0 ? this.#finishImages() : this.#finishDatabase()
  }

  #checkAncestors (segments: readonly string[]): void {
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/')
      if (this.#filePaths.has(parent)) throw new ArchiveError('duplicate', `${quoteName(segments.join('/'))} is inside ${quoteName(parent)}, which is a file`)
    }
  }

  #notAnImage (file: SeenFile): ArchiveError {
    const path = quoteName(file.segments.join('/'))
    if (file.sniffed !== undefined) {
      const accepted = IMAGE_FORMATS.filter((f) => this.#accept.has(f)).map((f) => f.toUpperCase()).join(', ')
      return new ArchiveError('not-an-image', `${path} is a ${file.sniffed.toUpperCase()} image, which is not accepted here (accepted: ${accepted})`)
    }
    return new ArchiveError('not-an-image', `${path} is not an image (expected ${IMAGE_FORMATS_TEXT})`)
  }

  #finishImages (): ArchiveLayoutResult {
    const tops = new Set<string>()
    let maxDepth = 0
    for (const f of this.#files) {
      tops.add(f.segments[0] as string)
      maxDepth = Math.max(maxDepth, f.segments.length)
    }
    for (const segments of this.#explicitDirs.values()) tops.add(segments[0] as string)
    const wrapper = tops.size === 1 && maxDepth >= 3 ? [...tops][0] : undefined
    const strip = wrapper === undefined ? 0 : 1
    const byLabel = new Map<string, string[]>()
    const imageFormats: Partial<Record<ImageFormat, number>> = {}
    for (const f of this.#files) {
      const path = f.segments.join('/')
      const rel = f.segments.slice(strip)
      if (rel.length === 1) throw new ArchiveError('top-level-file', `${quoteName(path)} is not inside a label folder: ${IMAGES_GO}`)
      if (rel.length > 2) throw tooDeep(path)
      if (f.image === undefined) throw this.#notAnImage(f)
      const [label, name] = rel as [string, string]
      if (WHITESPACE.test(label) || WHITESPACE.test(name)) {
        throw new ArchiveError('bad-name', `${quoteName(path)} contains whitespace; Caffe's image list files separate path and label with a space, so rename it`)
      }
      let names = byLabel.get(label)
      if (names === undefined) byLabel.set(label, (names = []))
      names.push(name)
      imageFormats[f.image] = (imageFormats[f.image] ?? 0) + 1
    }
    for (const segments of this.#explicitDirs.values()) {
      const rel = segments.slice(strip)
      if (rel.length === 0) continue
      if (rel.length > 1) throw tooDeep(`${segments.join('/')}/`)
      const label = rel[0] as string
      if (!byLabel.has(label)) {
        throw new ArchiveError('empty-label', `the folder ${quoteName(segments.join('/') + '/')} (label ${quoteName(label)}) holds no images`)
      }
    }
    const labels = [...byLabel.keys()].sort(compareNames)
    // Null prototype: labels are user data, and '__proto__' must stay an ordinary key.
    const counts: Record<string, number> = Object.create(null) as Record<string, number>
    const files = new Map<string, readonly string[]>()
    for (const label of labels) {
      const names = (byLabel.get(label) as string[]).sort(compareNames)
      counts[label] = names.length
      files.set(label, names)
    }
    return { format: 'images-tar-gz', wrapper, labels, counts, imageCount: this.#imageCount, files, imageFormats }
  }

  #finishDatabase (): ArchiveLayoutResult {
    const roots = new Map<string, 'lmdb' | 'leveldb'>()
    const names = new Map<string, Set<string>>()
    for (const f of this.#files) {
      const parent = f.segments.slice(0, -1).join('/')
      let set = names.get(parent)
      if (set === undefined) names.set(parent, (set = new Set()))
      set.add(f.segments[f.segments.length - 1] as string)
    }
    for (const [parent, set] of names) {
      const lmdb = set.has('data.mdb')
      const leveldb = set.has('CURRENT') && [...set].some((n) => n.startsWith('MANIFEST-'))
      if (lmdb && leveldb) throw new ArchiveError('layout', `the folder ${quoteName(parent === '' ? '.' : parent + '/')} holds both LMDB and LevelDB files`)
      if (lmdb) roots.set(parent, 'lmdb')
      if (leveldb) roots.set(parent, 'leveldb')
    }
    if (roots.size === 0) {
      const first = this.#firstOther as SeenFile
      throw new ArchiveError('not-an-image', `${quoteName(first.segments.join('/'))} is not an image (expected ${IMAGE_FORMATS_TEXT}), and the archive holds no LMDB (data.mdb) or LevelDB (CURRENT, MANIFEST-*) database`)
    }
    if (roots.size > 1) {
      const where = [...roots.keys()].sort(compareNames).map((r) => quoteName(r === '' ? '.' : r + '/')).join(', ')
      throw new ArchiveError('layout', `the archive holds more than one database (${where}); upload one per datafile`)
    }
    const [root, format] = [...roots][0] as [string, 'lmdb' | 'leveldb']
    const kind = format === 'lmdb' ? 'LMDB' : 'LevelDB'
    const rootSegments = root === '' ? [] : root.split('/')
    if (rootSegments.length > 1) {
      throw new ArchiveError('layout', `the ${kind} database in ${quoteName(root + '/')} is nested too deep: put its files at the top level or one folder down`)
    }
    const valid = format === 'lmdb' ? LMDB_FILE : LEVELDB_FILE
    for (const f of this.#files) {
      const parent = f.segments.slice(0, -1).join('/')
      const name = f.segments[f.segments.length - 1] as string
      if (parent !== root || !valid.test(name)) {
        throw new ArchiveError('layout', `${quoteName(f.segments.join('/'))} does not belong in an archive holding an ${kind} database`)
      }
    }
    for (const [path] of this.#explicitDirs) {
      if (path !== root) throw new ArchiveError('layout', `the folder ${quoteName(path + '/')} does not belong in an archive holding an ${kind} database`)
    }
    return { format, root, files: [...(names.get(root) as Set<string>)].sort(compareNames) }
  }
}

function tooDeep (path: string): ArchiveError {
  return new ArchiveError('too-deep', `${quoteName(path)} is nested too deep: ${IMAGES_GO}; a database goes at the top level or one folder down`)
}
