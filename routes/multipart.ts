import type { MultipartFile } from '@fastify/multipart'
import type { FastifyRequest, preValidationAsyncHookHandler } from 'fastify'
import { PayloadTooLargeError, ValidationError } from '../src/lib/errors.js'

export interface FormBodyOptions {
  /** Fields that may repeat and always become arrays (the original's repeated `urls`). */
  arrayFields?: readonly string[]
  /** Turns a file part into the body value for its field; without it, files are refused. */
  onFile?: (file: MultipartFile, request: FastifyRequest) => Promise<unknown>
}

/**
 * Lets a JSON route also take multipart/form-data: a preValidation hook reads the form into
 * the same object shape the JSON body has, so one zod schema validates both encodings.
 */
export function formBody (options: FormBodyOptions): preValidationAsyncHookHandler {
  const arrays = new Set(options.arrayFields ?? [])
  return async function readForm (request) {
    if (!request.isMultipart()) return
    const body: Record<string, unknown> = {}
    const add = (name: string, value: unknown): void => {
      const field = name.endsWith('[]') ? name.slice(0, -2) : name
      if (arrays.has(field)) {
        const list = Array.isArray(body[field]) ? body[field] as unknown[] : []
        list.push(value)
        body[field] = list
      } else if (field in body) {
        throw new ValidationError(`body.${field}: given more than once`)
      } else {
        body[field] = value
      }
    }
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (options.onFile === undefined) {
          part.file.resume()
          throw new ValidationError(`body.${part.fieldname}: this request takes no file uploads`)
        }
        add(part.fieldname, await options.onFile(part, request))
      } else {
        add(part.fieldname, typeof part.value === 'string' ? coerce(part.value) : part.value)
      }
    }
    request.body = body
  }
}

// Form fields are text; JSON booleans and numbers written as text are taken at their word,
// so `color=true` and `scale=255` mean what they say.
function coerce (value: string): unknown {
  if (value === 'true') return true
  if (value === 'false') return false
  return value
}

/** Reads a small uploaded text file (a prototxt) completely, refusing anything over `maxBytes`. */
export async function readTextFile (file: MultipartFile, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of file.file) {
    size += (chunk as Buffer).length
    if (size > maxBytes) {
      file.file.resume()
      throw new PayloadTooLargeError(`body.${file.fieldname}: file is larger than ${maxBytes} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  if (file.file.truncated) throw new PayloadTooLargeError(`body.${file.fieldname}: file is too large`)
  return Buffer.concat(chunks).toString('utf8')
}
