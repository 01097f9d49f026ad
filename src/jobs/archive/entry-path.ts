import { ArchiveError } from './archive-error.js'
import type { TarEntry } from './tar-entries.js'

/** What an entry is once its path is normalised: something to skip, a folder or a file. */
export type EntryKind =
  | { kind: 'skip' }
  | { kind: 'directory', segments: string[] }
  | { kind: 'file', segments: string[] }

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile'])
const SPECIAL_TYPES = new Set(['CharacterDevice', 'BlockDevice', 'FIFO'])
// Control characters break list files and terminals; a backslash is a separator on Windows.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
const MAX_SEGMENT_BYTES = 255

/** Finder and Explorer droppings: skipped wherever they appear, never written anywhere. */
export function isJunkSegment (segment: string): boolean {
  return segment === '__MACOSX' || segment.startsWith('._') || segment === '.DS_Store' || segment === 'Thumbs.db' || segment === 'desktop.ini'
}

/** Quotes a name for a message, escaping what a reader could not see. */
export function quoteName (name: string): string {
  return `'${JSON.stringify(name).slice(1, -1)}'`
}

/**
 * Normalises an entry's path (`./a//b/` → ['a', 'b']) and refuses everything that is unsafe to
 * extract anywhere: absolute paths, `..`, backslashes, control characters, links, devices and
 * exotic entry types. Junk (`__MACOSX/`, `._*`, `.DS_Store`) is skipped before its type is looked at.
 */
export function classifyEntry (entry: Pick<TarEntry, 'path' | 'type' | 'linkpath'>): EntryKind {
  const raw = entry.path
  const shown = quoteName(raw)
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw)) {
    throw new ArchiveError('unsafe-path', `${shown} is an absolute path; entries must be relative, like <label>/<file>`)
  }
  if (raw.includes('\\')) throw new ArchiveError('unsafe-path', `${shown} contains a backslash, which is not allowed in entry names`)
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.')
  if (segments.includes('..')) throw new ArchiveError('unsafe-path', `${shown} contains '..', which would point outside the archive`)
  if (segments.some(isJunkSegment)) return { kind: 'skip' }
  if (CONTROL.test(raw)) throw new ArchiveError('bad-name', `${shown} contains control characters`)
  for (const s of segments) {
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) throw new ArchiveError('bad-name', `${shown} has a name longer than ${MAX_SEGMENT_BYTES} bytes`)
  }
  const type = entry.type
  if (type === 'SymbolicLink' || type === 'Link') {
    const what = type === 'Link' ? 'a hard link' : 'a symbolic link'
    throw new ArchiveError('link', `${shown} is ${what} (to ${quoteName(entry.linkpath)}); archives may hold only files and folders`)
  }
  if (SPECIAL_TYPES.has(type)) throw new ArchiveError('special-file', `${shown} is a device or FIFO; archives may hold only files and folders`)
  if (type === 'Directory') return segments.length === 0 ? { kind: 'skip' } : { kind: 'directory', segments }
  if (!FILE_TYPES.has(type)) throw new ArchiveError('unsupported-entry', `${shown} is a tar entry of type ${type}, which is not supported`)
  if (segments.length === 0) throw new ArchiveError('bad-name', `${shown} is a file without a name`)
  return { kind: 'file', segments }
}
