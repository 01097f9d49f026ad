import { randomBytes } from 'node:crypto'

/** One part of a multipart/form-data body: a text field, or a file read as it is sent. */
export type FormPart =
  | { kind: 'field', name: string, value: string }
  | { kind: 'file', name: string, filename: string, contentType: string, size?: number, open: () => AsyncIterable<Uint8Array> }

export interface MultipartBody {
  contentType: string
  /** Total bytes when every file's size is known up front, else undefined (sent chunked). */
  length: number | undefined
  body: AsyncIterable<Uint8Array>
}

/**
 * Builds a multipart/form-data body that streams: file parts are opened only when the body
 * reaches them and pass through chunk by chunk, so neither a large archive nor many images are
 * ever held in memory.
 */
export function multipartBody (parts: FormPart[]): MultipartBody {
  const boundary = `----et-${randomBytes(12).toString('hex')}`
  const heads = parts.map((part) => Buffer.from(`--${boundary}\r\n${headerOf(part)}\r\n`))
  const tail = Buffer.from(`--${boundary}--\r\n`)
  let length: number | undefined = tail.length
  parts.forEach((part, i) => {
    const bodySize = part.kind === 'field' ? Buffer.byteLength(part.value) : part.size
    length = length === undefined || bodySize === undefined ? undefined : length + (heads[i]?.length ?? 0) + bodySize + 2
  })
  async function * generate (): AsyncIterable<Uint8Array> {
    for (const [i, part] of parts.entries()) {
      yield heads[i] ?? Buffer.alloc(0)
      if (part.kind === 'field') yield Buffer.from(part.value)
      else for await (const chunk of part.open()) yield chunk
      yield Buffer.from('\r\n')
    }
    yield tail
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, length, body: generate() }
}

function headerOf (part: FormPart): string {
  const name = quote(part.name)
  if (part.kind === 'field') return `Content-Disposition: form-data; name="${name}"\r\n`
  return `Content-Disposition: form-data; name="${name}"; filename="${quote(part.filename)}"\r\nContent-Type: ${part.contentType}\r\n`
}

// RFC 7578 §4.2: a quote or line break in a name is percent-encoded, not backslash-escaped.
function quote (value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
}
