import type { Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'

// Child-process side of startS3Server: runs s3rver outside the test process, so memory
// measurements in the test see only the client. Protocol over IPC: the parent sends
// { directory, buckets }, we answer { port }; then { type: 'requests' } → { requests }.

interface S3rverInstance {
  run: () => Promise<AddressInfo>
  httpServer?: Server
}

type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance

// s3rver is CommonJS without type declarations.
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor

let requests = 0

function reply (message: Record<string, unknown>): void {
  process.send?.(message)
}

process.on('message', (message: unknown) => {
  if (typeof message !== 'object' || message === null) return
  const type: unknown = Reflect.get(message, 'type')
  if (type === 'requests') {
    reply({ requests })
    return
  }
  if (type !== 'start') return
  const directory = Reflect.get(message, 'directory') as string
  const buckets = Reflect.get(message, 'buckets') as string[]
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name, configs: [] }))
  })
  server.run().then(({ port }) => {
    server.httpServer?.on('request', () => { requests++ })
    reply({ port })
  }, (err: unknown) => {
    reply({ error: err instanceof Error ? err.message : String(err) })
  })
})

// The parent closing the IPC channel (or dying) ends us: never outlive the test run.
process.on('disconnect', () => process.exit(0))
