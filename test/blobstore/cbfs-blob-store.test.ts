import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Readable } from 'node:stream'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CbfsBlobStore } from '../../blobstore/cbfs-blob-store.js'
import { UnavailableError } from '../../src/lib/errors.js'
import { startCbfsServer } from '../helpers/cbfs-server.js'
import type { CbfsTestServer } from '../helpers/cbfs-server.js'

// Protocol edges that neither the CBFS test server nor nginx produce, served by small
// scripted HTTP peers on loopback.

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

async function startPeer (handler: Handler): Promise<{ url: string, close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => handler(req, res, Buffer.concat(chunks)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

async function text (stream: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks).toString()
}

const closers: Array<() => Promise<void>> = []

afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.()
})

async function peerStore (handler: Handler, listing?: 'auto' | 'webdav' | 'autoindex'): Promise<CbfsBlobStore> {
  const peer = await startPeer(handler)
  const store = new CbfsBlobStore(listing === undefined ? { url: peer.url } : { url: peer.url, listing })
  closers.push(peer.close, async () => await store.close())
  return store
}

describe('CbfsBlobStore against the CBFS-compatible test server', () => {
  let cbfs: CbfsTestServer
  beforeAll(async () => { cbfs = await startCbfsServer() })
  afterAll(async () => { await cbfs.close() })

  it('detects CBFS by /.cbfs/ping/ and lists through /.cbfs/list/', async () => {
    const store = new CbfsBlobStore(cbfs.url.replace('http:', 'cbfs:'))
    closers.push(async () => await store.close())
    expect(await store.listingMode()).toBe('cbfs')
    await store.put('d/one.txt', '1')
    expect(await store.list('d/')).toEqual([{ key: 'd/one.txt', size: 1 }])
  })
})

describe('CbfsBlobStore protocol edges', () => {
  it('cuts the range out itself when the server ignores Range and sends everything', async () => {
    const store = await peerStore((_req, res) => {
      res.writeHead(200, { 'content-length': '10' }).end('0123456789')
    })
    expect(await text(await store.get('k', { start: 3, end: 5 }))).toBe('345')
    expect(await text(await store.get('k', { start: 8 }))).toBe('89')
    expect(await text(await store.get('k', { start: 20 }))).toBe('')
  })

  it('maps 5xx and unreachable servers to UnavailableError, other failures to plain errors', async () => {
    const failing = await peerStore((req, res) => {
      res.writeHead(req.method === 'PUT' ? 507 : 403).end('nope')
    })
    await expect(failing.put('k', 'x')).rejects.toBeInstanceOf(UnavailableError)
    const forbidden = await failing.stat('k').catch((err: unknown) => err)
    expect(forbidden).toBeInstanceOf(Error)
    expect(forbidden).not.toBeInstanceOf(UnavailableError)
    expect((forbidden as Error).message).toMatch(/answered 403/)

    const unreachable = new CbfsBlobStore('http://127.0.0.1:1/')
    closers.push(async () => await unreachable.close())
    await expect(unreachable.get('k')).rejects.toBeInstanceOf(UnavailableError)
  })

  it('reads PROPFIND multistatus with any namespace prefix, entities and absolute hrefs', async () => {
    const store = await peerStore((req, res) => {
      if (req.method !== 'PROPFIND') return res.writeHead(404).end()
      if (req.headers.depth === '0') return res.writeHead(207, { 'content-type': 'application/xml' }).end('<multistatus xmlns="DAV:"/>')
      const dir = req.url ?? '/'
      const listing = dir === '/a%20dir/'
        ? `<?xml version="1.0"?>
<multistatus xmlns="DAV:" xmlns:lp1="DAV:">
  <response><href>/a%20dir/</href><propstat><prop><lp1:resourcetype><lp1:collection/></lp1:resourcetype></prop></propstat></response>
  <response><href>http://127.0.0.1/a%20dir/x%26y.bin</href><propstat><prop><lp1:resourcetype/><lp1:getcontentlength>7</lp1:getcontentlength></prop></propstat></response>
  <response><href>/a%20dir/caf%C3%A9&amp;b.txt</href><propstat><prop><getcontentlength>3</getcontentlength><resourcetype/></prop></propstat></response>
</multistatus>`
        : `<?xml version="1.0"?>
<D:multistatus xmlns:D="DAV:">
  <D:response><D:href>/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop></D:propstat></D:response>
  <D:response><D:href>/a%20dir/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop></D:propstat></D:response>
  <D:response><D:href>/top.bin</D:href><D:propstat><D:prop><D:resourcetype/><D:getcontentlength>12</D:getcontentlength></D:prop></D:propstat></D:response>
</D:multistatus>`
      res.writeHead(207, { 'content-type': 'application/xml; charset=utf-8' }).end(listing)
    })
    expect(await store.listingMode()).toBe('webdav')
    expect(await store.list()).toEqual([
      { key: 'a dir/café&b.txt', size: 3 },
      { key: 'a dir/x&y.bin', size: 7 },
      { key: 'top.bin', size: 12 }
    ])
    expect(await store.list('a dir/c')).toEqual([{ key: 'a dir/café&b.txt', size: 3 }])
  })

  it('explains what to configure when the directory listing is HTML', async () => {
    const store = await peerStore((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body><a href="x">x</a></body></html>')
    }, 'autoindex')
    await expect(store.list('d/')).rejects.toThrow(/autoindex_format json/)
  })
})
