import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { create } from 'tar'
import { UsageError } from './cli-error.js'

export interface ImageFolder {
  dir: string
  /** `<label>/<image>` paths relative to `dir`, in a stable order. */
  entries: string[]
  labels: string[]
  bytes: number
}

/**
 * Lists a folder laid out as a datafile wants it — one subfolder per label, images directly
 * inside — and refuses anything else with a message saying what is wrong, before a byte is
 * sent. Hidden files (`.DS_Store`, `.git`) are skipped.
 */
export async function listImageFolder (dir: string): Promise<ImageFolder> {
  const entries: string[] = []
  const labels: string[] = []
  let bytes = 0
  for (const label of (await readdir(dir)).filter(visible).sort()) {
    const labelPath = join(dir, label)
    const info = await stat(labelPath)
    if (!info.isDirectory()) throw new UsageError(`${labelPath} is a file; a datafile folder holds one folder per label (<label>/<image>), no loose files`)
    let count = 0
    for (const name of (await readdir(labelPath)).filter(visible).sort()) {
      const file = await stat(join(labelPath, name))
      if (file.isDirectory()) throw new UsageError(`${join(labelPath, name)} is a folder; images go directly inside their label's folder (<label>/<image>)`)
      if (!file.isFile()) continue
      entries.push(`${label}/${name}`)
      bytes += file.size
      count++
    }
    if (count > 0) labels.push(label)
  }
  if (entries.length === 0) throw new UsageError(`${dir} has no images: expected <label>/<image> files, e.g. ${join(dir, 'cat', '001.jpg')}`)
  return { dir, entries, labels, bytes }
}

/**
 * Packs the folder into a .tar.gz while it is read: the archive is produced chunk by chunk as
 * the upload consumes it (backpressure included), never written to disk nor held whole.
 * Entries are exactly `<label>/<image>`, with portable headers (no owner names or uids).
 */
export function packImageFolder (folder: ImageFolder, onEntry?: (count: number) => void): AsyncIterable<Uint8Array> {
  let count = 0
  return create({
    gzip: true,
    cwd: folder.dir,
    portable: true,
    follow: true,
    onWriteEntry: () => { onEntry?.(++count) }
  }, folder.entries) as unknown as AsyncIterable<Uint8Array>
}

function visible (name: string): boolean {
  return !name.startsWith('.')
}
