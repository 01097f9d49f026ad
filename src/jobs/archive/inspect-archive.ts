import type { ArchiveLayoutResult } from './archive-layout.js'
import type { ArchiveInput, ArchiveStats } from './archive-source.js'
import { walkArchive } from './walk-archive.js'
import type { ArchiveOptions } from './walk-archive.js'

/** Sizes common to every inspection result. */
export interface ArchiveSizes {
  /** Uncompressed tar bytes. */
  bytes: number
  compressedBytes: number
  compression: ArchiveStats['compression']
}

/** What a datafile holds: label folders of images, or one LMDB/LevelDB directory. */
export type ArchiveInspection = ArchiveLayoutResult & ArchiveSizes

export type ImagesInspection = Extract<ArchiveInspection, { format: 'images-tar-gz' }>
export type DatabaseInspection = Extract<ArchiveInspection, { format: 'lmdb' | 'leveldb' }>

/**
 * Reads a datafile once and says what it is. Accepts .tar.gz and plain .tar; skips macOS and
 * Windows junk; strips a single wrapper folder around the label folders. Rejects with an
 * ArchiveError whose message is meant for the uploader; errors of the input stream itself
 * pass through unchanged (they may be worth a retry).
 */
export async function inspectArchive (input: ArchiveInput, options: ArchiveOptions = {}): Promise<ArchiveInspection> {
  const { layout, stats } = await walkArchive(input, options)
  return { ...layout, bytes: stats.bytes, compressedBytes: stats.compressedBytes, compression: stats.compression }
}
