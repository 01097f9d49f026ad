import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CbfsBlobStore } from '../../blobstore/cbfs-blob-store.js'
import { startNginxWebdav } from '../helpers/nginx-webdav.js'
import type { NginxWebdav } from '../helpers/nginx-webdav.js'
import { defineBlobStoreConformance } from './blob-store-conformance.js'

// Needs nginx with its WebDAV module and the dav-ext module (Debian: nginx-light and
// libnginx-mod-http-dav-ext), so it is not part of `npm test`; run it with
// `npm run test:nginx`.

let plain: NginxWebdav
let withDavExt: NginxWebdav

beforeAll(async () => {
  [plain, withDavExt] = await Promise.all([startNginxWebdav({ propfind: false }), startNginxWebdav({ propfind: true })])
})

afterAll(async () => {
  await Promise.all([plain?.close(), withDavExt?.close()])
})

/** Files nginx left in its document root that are not blobs (it keeps temp files elsewhere). */
async function leftovers (server: NginxWebdav): Promise<string[]> {
  const entries = await readdir(server.root, { recursive: true, withFileTypes: true })
  return entries.filter((entry) => entry.isFile() && entry.name.startsWith('.')).map((entry) => path.join(entry.parentPath, entry.name))
}

defineBlobStoreConformance([
  {
    name: 'cbfs-compatible on nginx WebDAV (autoindex JSON listing)',
    create: async () => new CbfsBlobStore({ url: plain.url }),
    storesContentType: false,
    boundedMemory: true,
    leftovers: async () => await leftovers(plain)
  },
  {
    name: 'cbfs-compatible on nginx WebDAV + dav-ext (PROPFIND listing)',
    create: async () => new CbfsBlobStore({ url: `${withDavExt.url}blobs/under/a%20prefix/` }),
    storesContentType: false,
    boundedMemory: true,
    leftovers: async () => await leftovers(withDavExt)
  }
])

describe('listing detection against nginx', () => {
  it('picks autoindex on plain nginx and PROPFIND with dav-ext, and both list the same keys', async () => {
    const stores = [new CbfsBlobStore({ url: plain.url }), new CbfsBlobStore({ url: withDavExt.url, listing: 'webdav' })]
    const forced = new CbfsBlobStore({ url: plain.url, listing: 'autoindex' })
    const wrong = new CbfsBlobStore({ url: plain.url, listing: 'webdav' })
    const detectedOnDavExt = new CbfsBlobStore({ url: `${withDavExt.url}not/yet/created/` })
    try {
      expect(await stores[0]?.listingMode()).toBe('autoindex')
      // The base directory does not exist yet: detection falls back to probing the root.
      expect(await detectedOnDavExt.listingMode()).toBe('webdav')
      for (const store of [...stores, forced]) {
        await store.put('detect/x/1.bin', 'one')
        await store.put('detect/2.bin', 'two!')
      }
      for (const store of [...stores, forced]) {
        expect(await store.list('detect/')).toEqual([{ key: 'detect/2.bin', size: 4 }, { key: 'detect/x/1.bin', size: 3 }])
      }
      await expect(wrong.list('detect/')).rejects.toThrow(/405/)
    } finally {
      await wrong.close()
      await detectedOnDavExt.close()
      for (const store of [...stores, forced]) {
        await store.deletePrefix('detect/')
        await store.close()
      }
    }
  })
})
