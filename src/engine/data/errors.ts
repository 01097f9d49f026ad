import { AppError } from '../../lib/errors.js'

/**
 * A file that does not hold a readable LMDB database: wrong magic, a page header that does not
 * add up, a page past the end of a truncated file. The message always starts with
 * `not an LMDB database: ` and names the file.
 */
export class LmdbFormatError extends AppError {
  constructor (file: string, reason: string) {
    super(400, 'ET_LMDB_FORMAT', `not an LMDB database: ${file}: ${reason}`, { details: { file } })
  }
}

/** A valid LMDB file using a feature this engine does not read (sub-databases, dupsort, format v2). */
export class LmdbUnsupportedError extends AppError {
  constructor (file: string, reason: string) {
    super(400, 'ET_LMDB_UNSUPPORTED', `unsupported LMDB database: ${file}: ${reason}`, { details: { file } })
  }
}

/** A database that cannot be opened or created (missing, already exists, backend failure). */
export class DatabaseError extends AppError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(400, 'ET_DATABASE', message, options)
  }
}

/** Bytes that are not a decodable image; the message names the file (or the datum key). */
export class ImageDecodeError extends AppError {
  readonly source: string
  readonly reason: string
  constructor (source: string, reason: string, options?: { cause?: unknown }) {
    super(400, 'ET_IMAGE_DECODE', `cannot decode image ${source}: ${reason}`, { ...options, details: { source } })
    this.source = source
    this.reason = reason
  }
}

/** An ImageData/convert_imageset list file with a bad line; names the file and the 1-based line. */
export class ListFileError extends AppError {
  constructor (file: string, line: number, problem: string) {
    super(400, 'ET_LIST_FILE', line > 0 ? `${file}:${line}: ${problem}` : `${file}: ${problem}`, { details: { file, line } })
  }
}

/** Data that decodes but does not fit (IDX header, datum size, mean shape, crop larger than image). */
export class DataShapeError extends AppError {
  constructor (message: string) {
    super(400, 'ET_DATA_SHAPE', message)
  }
}
