import type { FastifyRequest } from 'fastify'
import { ValidationError } from '../src/lib/errors.js'

/**
 * Collects the repeated `urls` fields of a multipart classify request (the original's form).
 * Other fields are rejected by name so a typo is not silently ignored.
 */
export async function readMultipartUrls (request: FastifyRequest): Promise<{ urls: string[], 'notify-url'?: string }> {
  const urls: string[] = []
  let notifyUrl: string | undefined
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      part.file.resume()
      throw new ValidationError(`body.${part.fieldname}: image uploads are not accepted yet; give image URLs in "urls"`)
    }
    const value = typeof part.value === 'string' ? part.value : String(part.value)
    if (part.fieldname === 'urls' || part.fieldname === 'urls[]') urls.push(value)
    else if (part.fieldname === 'notify-url') notifyUrl = value
    else throw new ValidationError(`body.${part.fieldname}: unknown field (expected "urls")`)
  }
  return notifyUrl === undefined ? { urls } : { urls, 'notify-url': notifyUrl }
}
