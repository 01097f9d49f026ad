import { AppError } from '../../lib/errors.js'

/**
 * Binary protobuf input that cannot be decoded (truncated, garbage, impossible lengths).
 * `messageType` is the innermost message being decoded and `offset` the byte where it went wrong.
 */
export class ProtoDecodeError extends AppError {
  readonly messageType: string
  readonly offset: number

  constructor (messageType: string, offset: number, problem: string) {
    super(400, 'ET_PROTO_DECODE', `invalid ${messageType} at byte ${offset}: ${problem}`, { details: { messageType, offset } })
    this.messageType = messageType
    this.offset = offset
  }
}

/** A message object that cannot be serialized (wrong value type, missing required field). */
export class ProtoEncodeError extends AppError {
  constructor (message: string) {
    super(400, 'ET_PROTO_ENCODE', message)
  }
}

/** Where a prototxt problem is: 1-based line and column, and the file name when known. */
export interface SourcePosition {
  readonly file?: string | undefined
  readonly line: number
  readonly column: number
}

/**
 * Protobuf text-format input (prototxt) that does not parse against the schema. The message
 * reads like a compiler diagnostic: `lenet.prototxt:12:5: unknown field "bogus" in caffe.LayerParameter`.
 */
export class PrototxtError extends AppError {
  readonly file: string | undefined
  readonly line: number
  readonly column: number
  readonly problem: string

  constructor (position: SourcePosition, problem: string) {
    const where = `${position.file === undefined ? '' : `${position.file}:`}${position.line}:${position.column}`
    super(400, 'ET_PROTOTXT', `${where}: ${problem}`, { details: { file: position.file, line: position.line, column: position.column } })
    this.file = position.file
    this.line = position.line
    this.column = position.column
    this.problem = problem
  }
}
