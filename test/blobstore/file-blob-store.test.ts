import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FileBlobStore } from '../../blobstore/file-blob-store.js'
import { ConflictError, NotFoundError } from '../../src/lib/errors.js'

async function text (stream: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks).toString()
}

describe('FileBlobStore specifics', () => {
  let root: string
  let store: FileBlobStore

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'et-file-blob-'))
    store = new FileBlobStore(path.join(root, 'blobs'))
  })

  afterEach(async () => {
    await store.close()
    await rm(root, { recursive: true, force: true })
  })

  it('stores a blob as the plain file <dir>/<key>', async () => {
    await store.put('doc-1/sub dir/a.txt', 'hello')
    expect(await readFile(path.join(root, 'blobs', 'doc-1', 'sub dir', 'a.txt'), 'utf8')).toBe('hello')
    expect(store.root).toBe(path.join(root, 'blobs'))
  })

  it('ignores a content-type sidecar that no longer matches the file, falling back to the extension', async () => {
    await store.put('d/data.json', '{}', { contentType: 'application/vnd.custom+json' })
    await store.put('d/raw.bin', 'x', { contentType: 'application/x-custom' })
    expect((await store.stat('d/data.json')).contentType).toBe('application/vnd.custom+json')
    // Someone rewrites the files behind the store's back: the recorded identity no longer matches.
    await new Promise((resolve) => setTimeout(resolve, 20))
    await writeFile(path.join(root, 'blobs', 'd', 'data.json'), '{"changed":true}')
    await writeFile(path.join(root, 'blobs', 'd', 'raw.bin'), 'yy')
    expect(await store.stat('d/data.json')).toEqual({ size: 16, contentType: 'application/json' })
    expect(await store.stat('d/raw.bin')).toEqual({ size: 2 })
  })

  it('drops the old content type when a put gives none', async () => {
    await store.put('d/x.bin', 'a', { contentType: 'application/x-one' })
    await store.put('d/x.bin', 'b')
    expect(await store.stat('d/x.bin')).toEqual({ size: 1 })
    expect((await readdir(path.join(root, 'blobs', 'd'))).sort()).toEqual(['x.bin'])
  })

  it('never shows bookkeeping files: sidecars and temp files left by a crash', async () => {
    await store.put('d/typed.txt', 'x', { contentType: 'text/x-typed' })
    await writeFile(path.join(root, 'blobs', 'd', '.et-part.crashed.bin.0123456789abcdef'), 'half a file')
    expect(await store.list('d/')).toEqual([{ key: 'd/typed.txt', size: 1 }])
    expect(await store.list()).toEqual([{ key: 'd/typed.txt', size: 1 }])
    expect((await readdir(path.join(root, 'blobs', 'd'))).sort()).toEqual(['.et-meta.typed.txt', '.et-part.crashed.bin.0123456789abcdef', 'typed.txt'])
  })

  it('refuses a key that is a directory of blobs, or lies under a blob, with ConflictError', async () => {
    await store.put('c/a/b.bin', 'x')
    await expect(store.put('c/a', 'y')).rejects.toBeInstanceOf(ConflictError)
    await store.put('c/file', 'z')
    await expect(store.put('c/file/inner', Readable.from(['w']))).rejects.toBeInstanceOf(ConflictError)
    expect(await text(await store.get('c/a/b.bin'))).toBe('x')
    expect(await text(await store.get('c/file'))).toBe('z')
    expect((await readdir(path.join(root, 'blobs', 'c'))).sort()).toEqual(['a', 'file'])
  })

  it('removes directories emptied by deletePrefix, but not ones still in use', async () => {
    await store.put('p/q/r/1.bin', '1')
    await store.put('p/q/2.bin', '2')
    await store.put('p/keep.bin', '3')
    expect(await store.deletePrefix('p/q/')).toBe(2)
    expect(await readdir(path.join(root, 'blobs', 'p'))).toEqual(['keep.bin'])
    expect(await store.deletePrefix('p/')).toBe(1)
    await expect(stat(path.join(root, 'blobs', 'p'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('keeps streaming the old content to a reader that opened before an overwrite', async () => {
    const old = 'o'.repeat(1024 * 1024)
    await store.put('r/file.bin', old)
    const reader = await store.get('r/file.bin')
    await store.put('r/file.bin', 'new')
    expect(await text(reader)).toBe(old)
    expect(await text(await store.get('r/file.bin'))).toBe('new')
  })

  it('reports a missing root as empty and missing keys as NotFoundError', async () => {
    const fresh = new FileBlobStore(path.join(root, 'never-created'))
    expect(await fresh.list()).toEqual([])
    await expect(fresh.get('a/b')).rejects.toBeInstanceOf(NotFoundError)
    await fresh.delete('a/b')
  })
})
