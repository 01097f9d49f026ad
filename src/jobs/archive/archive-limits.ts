/** Bounds applied while an archive streams by; exceeding one is an ArchiveError, never a partial result. */
export interface ArchiveLimits {
  /** Total size of the uncompressed tar stream (headers and padding included). */
  maxBytes: number
  /** Number of tar entries (files and directories; pax and long-name records not counted). */
  maxEntries: number
  /** Uncompressed bytes per compressed byte; beyond this the archive is treated as a bomb. */
  maxRatio: number
  /** The ratio is only judged past this many uncompressed bytes: tiny archives are mostly padding. */
  ratioGraceBytes: number
  /** Size of one image file. Database files (data.mdb, *.ldb, …) are bounded by maxBytes only. */
  maxFileBytes: number
}

const GiB = 1024 ** 3
const MiB = 1024 ** 2

export const DEFAULT_ARCHIVE_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxBytes: 2 * GiB,
  maxEntries: 1_000_000,
  maxRatio: 200,
  ratioGraceBytes: 8 * MiB,
  maxFileBytes: 64 * MiB
})

/** Fills in defaults and refuses nonsense (a limit that is not a positive number is a programming error). */
export function resolveArchiveLimits (limits: Partial<ArchiveLimits> = {}): ArchiveLimits {
  const out: ArchiveLimits = { ...DEFAULT_ARCHIVE_LIMITS }
  for (const key of Object.keys(out) as Array<keyof ArchiveLimits>) {
    const value = limits[key]
    if (value === undefined) continue
    if (!(typeof value === 'number' && value >= 0 && !Number.isNaN(value))) {
      throw new TypeError(`archive limit ${key} must be a non-negative number, got ${String(value)}`)
    }
    out[key] = value
  }
  return out
}

/** "2 GiB", "64 MiB", "900 bytes": limits in messages people read. */
export function formatBytes (n: number): string {
  const units: Array<[number, string]> = [[GiB, 'GiB'], [MiB, 'MiB'], [1024, 'KiB']]
  for (const [size, unit] of units) {
    if (n >= size) {
      const v = n / size
      return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`
    }
  }
  return `${n} bytes`
}
