import type { Readable } from 'node:stream'
import { ArchiveError } from './archive-error.js'
import { compareNames } from './archive-layout.js'
import type { ArchiveInput } from './archive-source.js'
import { quoteName } from './entry-path.js'
import type { ImagesInspection } from './inspect-archive.js'
import { planSplit } from './split-plan.js'
import { TarGzWriter } from './tar-gz-writer.js'
import { walkArchive } from './walk-archive.js'
import type { ArchiveOptions } from './walk-archive.js'

export interface SplitOptions extends ArchiveOptions {
  /** The result of inspectArchive on the same bytes: it supplies the sorted names per label. */
  inspection: ImagesInspection
  /** Share of each label's images that goes to training, strictly between 0 and 1. */
  trainingFraction: number
  /** gzip level of both outputs (default 6). */
  compressionLevel?: number
}

/** One output of a split. */
export interface SplitSide {
  imageCount: number
  /** Images per label; labels without images on this side are absent. */
  counts: Record<string, number>
  /** Uncompressed tar bytes written. */
  bytes: number
}

export interface SplitReport {
  labels: string[]
  training: SplitSide
  test: SplitSide
}

/** Two .tar.gz streams filled in one pass, and the promise of the pass. */
export interface SplitStreams {
  training: Readable
  test: Readable
  /** Resolves once both outputs have been ended; rejects (and destroys both outputs) on any failure. */
  done: Promise<SplitReport>
}

const FILE_MODE_BITS = 0o777
// Up to this size a file is read whole and batched synchronously; larger ones stream through.
const SMALL_FILE_BYTES = 1024 * 1024

function changed (detail: string): ArchiveError {
  return new ArchiveError('changed', `the archive is not the one that was inspected: ${detail}`)
}

function emptySide (): SplitSide {
  return { imageCount: 0, counts: Object.create(null) as Record<string, number>, bytes: 0 }
}

/**
 * Splits an images archive into training and test archives in one streaming pass, stratified
 * per label and deterministic (see planSplit). Entries are re-emitted as `<label>/<file>`
 * (wrapper and junk dropped, setuid/setgid/sticky bits cleared, owner and mtime kept) after
 * the same checks as inspectArchive. Both outputs must be consumed concurrently: a reader
 * that drains one before touching the other stalls the pass.
 */
export function splitArchive (input: ArchiveInput, options: SplitOptions): SplitStreams {
  const { inspection } = options
  const level = options.compressionLevel ?? 6
  const writers = { training: new TarGzWriter({ level }), test: new TarGzWriter({ level }) }
  // A bad fraction is the caller's bug, reported before any byte is read.
  const plan = planSplit(inspection.files, options.trainingFraction)
  const run = async (): Promise<SplitReport> => {
    const report: SplitReport = { labels: [...inspection.labels], training: emptySide(), test: emptySide() }
    const strip = inspection.wrapper === undefined ? 0 : 1
    const { layout } = await walkArchive(input, options, async ({ segments, entry, image }) => {
      // A non-image before any image is only refused at the end, by the layout: never copy it.
      if (image === undefined) return
      const path = segments.join('/')
      if (strip === 1 && segments[0] !== inspection.wrapper) throw changed(`${quoteName(path)} is outside ${quoteName(inspection.wrapper ?? '')}`)
      const rel = segments.slice(strip)
      const split = rel.length === 2 ? plan.get(rel[0] as string) : undefined
      const name = rel[1] as string
      const sideName = split?.training.has(name) === true ? 'training' : split?.test.has(name) === true ? 'test' : undefined
      if (sideName === undefined) throw changed(`it holds ${quoteName(path)}`)
      const label = rel[0] as string
      const side = report[sideName]
      await writers[sideName].writeFile({
        path: `${label}/${name}`,
        size: entry.size,
        mode: entry.mode & FILE_MODE_BITS,
        uid: entry.uid,
        gid: entry.gid,
        uname: entry.uname,
        gname: entry.gname,
        mtime: entry.mtime
      }, entry.size <= SMALL_FILE_BYTES ? await entry.read() : entry.body())
      side.imageCount++
      side.counts[label] = (side.counts[label] ?? 0) + 1
    })
    if (layout.format !== 'images-tar-gz') throw changed(`it now holds an ${layout.format} database`)
    for (const label of inspection.labels) {
      if (layout.counts[label] !== inspection.counts[label]) {
        throw changed(`label ${quoteName(label)} has ${layout.counts[label] ?? 0} images instead of ${inspection.counts[label] ?? 0}`)
      }
    }
    if (layout.labels.length !== inspection.labels.length) throw changed(`it has ${layout.labels.length} labels instead of ${inspection.labels.length}`)
    report.labels.sort(compareNames)
    await Promise.all([writers.training.end(), writers.test.end()])
    report.training.bytes = writers.training.bytes
    report.test.bytes = writers.test.bytes
    return report
  }
  const done = run().catch((err: unknown) => {
    const reason = err instanceof Error ? err : new Error(String(err))
    writers.training.destroy(reason)
    writers.test.destroy(reason)
    throw err
  })
  // The caller may await the outputs first; a rejection must not count as unhandled meanwhile.
  done.catch(() => {})
  return { training: writers.training.output, test: writers.test.output, done }
}
