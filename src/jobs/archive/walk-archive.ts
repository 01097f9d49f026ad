import { resolveArchiveLimits } from './archive-limits.js'
import type { ArchiveLimits } from './archive-limits.js'
import { ArchiveLayout } from './archive-layout.js'
import type { ArchiveLayoutResult } from './archive-layout.js'
import { openArchiveSource } from './archive-source.js'
import type { ArchiveInput, ArchiveStats } from './archive-source.js'
import { classifyEntry } from './entry-path.js'
import { SNIFF_BYTES, sniffImage } from './sniff.js'
import type { ImageFormat } from './sniff.js'
import { readTarEntries } from './tar-entries.js'
import type { TarEntry } from './tar-entries.js'

/** Options shared by inspect, split and extract. */
export interface ArchiveOptions {
  limits?: Partial<ArchiveLimits>
  /** Aborting destroys the input and rejects with the signal's reason. */
  signal?: AbortSignal
  /** Image formats accepted (default: all that can be sniffed). */
  imageFormats?: readonly ImageFormat[]
}

/** A file entry that passed every per-entry check, handed to the walker's visitor. */
export interface WalkedFile {
  /** Normalised path segments, as in the archive (a wrapper folder not yet stripped). */
  segments: readonly string[]
  entry: TarEntry
  image: ImageFormat | undefined
}

export interface WalkResult {
  layout: ArchiveLayoutResult
  stats: ArchiveStats
}

/**
 * Streams an archive once: every entry is classified (unsafe ones throw), every file sniffed,
 * and `visit` may read a file's body before the walk moves on. Resolves with the layout only
 * after the whole input, gzip trailer included, has been read and checked.
 */
export async function walkArchive (input: ArchiveInput, options: ArchiveOptions, visit?: (file: WalkedFile) => Promise<void> | void): Promise<WalkResult> {
  const limits = resolveArchiveLimits(options.limits)
  const source = await openArchiveSource(input, limits, options.signal)
  const layout = new ArchiveLayout({ limits, ...(options.imageFormats === undefined ? {} : { imageFormats: options.imageFormats }) })
  const entries = readTarEntries(source.chunks, { maxEntries: limits.maxEntries, compression: source.stats.compression })
  for await (const entry of entries) {
    const kind = classifyEntry(entry)
    if (kind.kind === 'skip') continue
    if (kind.kind === 'directory') {
      layout.addDirectory(kind.segments)
      continue
    }
    layout.checkFile(kind.segments, entry.size)
    const image = sniffImage(await entry.peek(SNIFF_BYTES))
    layout.addFile(kind.segments, image)
    if (visit !== undefined) await visit({ segments: kind.segments, entry, image })
  }
  return { layout: layout.finish(), stats: source.stats }
}
