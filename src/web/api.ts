/** Header the server uses to leave out `WWW-Authenticate` (and the browser's own login dialog) on a 401. */
const CLIENT_HEADER = 'x-elastic-thought-client'

/** A failed API call, with the server's status, stable code and message. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string

  constructor (status: number, code: string, message: string) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

export type Doc = Record<string, unknown> & { id: string }

export interface Page {
  items: Doc[]
  next: string | null
}

function isDoc (value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && typeof Reflect.get(value, 'id') === 'string'
}

async function errorOf (res: Response): Promise<ApiError> {
  let code = 'ET_HTTP'
  let message = `${res.status} ${res.statusText}`
  try {
    const body: unknown = await res.json()
    if (typeof body === 'object' && body !== null) {
      const m: unknown = Reflect.get(body, 'message')
      const c: unknown = Reflect.get(body, 'code')
      if (typeof m === 'string') message = m
      if (typeof c === 'string') code = c
    }
  } catch {
    // Not JSON (a proxy's error page): the status line says enough.
  }
  return new ApiError(res.status, code, message)
}

export interface ApiOptions {
  authorization: string
  /** Called once the server says the credentials are no longer good (401). */
  onUnauthorized?: () => void
}

/**
 * The REST API as the dashboard uses it: every request carries the Basic Authorization
 * header, every failure becomes an ApiError carrying the server's message.
 */
export class Api {
  private readonly options: ApiOptions

  constructor (options: ApiOptions) {
    this.options = options
  }

  /** Any request; resolves only for 2xx responses. */
  async fetch (path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    headers.set('authorization', this.options.authorization)
    headers.set(CLIENT_HEADER, 'dashboard')
    let res: Response
    try {
      res = await fetch(path, { ...init, headers, cache: 'no-store' })
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err
      throw new ApiError(0, 'ET_NETWORK', 'the server cannot be reached')
    }
    if (res.ok) return res
    const error = await errorOf(res)
    if (res.status === 401) this.options.onUnauthorized?.()
    throw error
  }

  async json (path: string, init: RequestInit = {}): Promise<unknown> {
    const res = await this.fetch(path, init)
    return res.status === 204 ? null : await res.json()
  }

  async doc (path: string, init: RequestInit = {}): Promise<Doc> {
    const value = await this.json(path, init)
    if (!isDoc(value)) throw new ApiError(500, 'ET_BAD_RESPONSE', `unexpected answer from ${path}`)
    return value
  }

  async list (plural: string, limit = 50): Promise<Page> {
    const value = await this.json(`/${plural}?limit=${limit}`)
    const items: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, 'items') : null
    const next: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, 'next') : null
    return { items: Array.isArray(items) ? items.filter(isDoc) : [], next: typeof next === 'string' ? next : null }
  }

  async postJson (path: string, body: unknown): Promise<Doc> {
    return await this.doc(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  }

  async postForm (path: string, form: FormData): Promise<Doc> {
    return await this.doc(path, { method: 'POST', body: form })
  }

  /**
   * A multipart upload through XMLHttpRequest, the one browser API that reports upload
   * progress; same headers and errors as `fetch`.
   */
  async upload (path: string, form: FormData, onProgress: (fraction: number) => void): Promise<Doc> {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', path)
    xhr.setRequestHeader('authorization', this.options.authorization)
    xhr.setRequestHeader(CLIENT_HEADER, 'dashboard')
    xhr.responseType = 'text'
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total) })
    const done = new Promise<void>((resolve, reject) => {
      xhr.addEventListener('load', () => { resolve() })
      xhr.addEventListener('error', () => { reject(new ApiError(0, 'ET_NETWORK', 'the upload failed: the server cannot be reached')) })
      xhr.addEventListener('abort', () => { reject(new ApiError(0, 'ET_ABORTED', 'the upload was cancelled')) })
    })
    xhr.send(form)
    await done
    const res = new Response(xhr.responseText, { status: xhr.status, headers: { 'content-type': 'application/json' } })
    if (!res.ok) {
      if (res.status === 401) this.options.onUnauthorized?.()
      throw await errorOf(res)
    }
    const value: unknown = await res.json()
    if (!isDoc(value)) throw new ApiError(500, 'ET_BAD_RESPONSE', `unexpected answer from ${path}`)
    return value
  }

  /**
   * Downloads an authenticated file and hands it to the browser as a file save. A plain link
   * cannot carry the Authorization header, so the body passes through a blob URL.
   */
  async download (path: string, fileName: string): Promise<void> {
    const res = await this.fetch(path)
    const disposition = res.headers.get('content-disposition') ?? ''
    const named = /filename="([^"]+)"/.exec(disposition)?.[1]
    const url = URL.createObjectURL(await res.blob())
    try {
      const a = document.createElement('a')
      a.href = url
      a.download = named ?? fileName
      document.body.append(a)
      a.click()
      a.remove()
    } finally {
      // The click starts the save synchronously; the URL may go once the event loop turns.
      setTimeout(() => { URL.revokeObjectURL(url) }, 10_000)
    }
  }
}
