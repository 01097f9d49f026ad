import { createServer, connect } from 'node:net'
import type { Server, Socket } from 'node:net'

/**
 * A loopback TCP proxy in front of a real server, to break a client's connection in the ways a
 * network or a restarting database does: cut every connection, go silent while staying
 * connected, or refuse new connections for a while.
 */
export interface TcpProxy {
  readonly url: string
  /** Connections accepted so far (refused ones included). */
  readonly connections: number
  /** Destroys every open connection (both sides). */
  cut: () => void
  /** While true, data from the server is held back (the connection stays open, silent). */
  stall: (on: boolean) => void
  /** While true, new connections are closed as soon as they are accepted. */
  refuse: (on: boolean) => void
  close: () => Promise<void>
}

export async function startTcpProxy (target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target)
  const open = new Set<Socket>()
  let connections = 0
  let stalled = false
  let refusing = false
  const held: Array<() => void> = []
  const server: Server = createServer((client) => {
    connections++
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = connect(Number(port), hostname)
    open.add(client)
    open.add(upstream)
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.on('data', (chunk: Buffer) => upstream.write(chunk))
    upstream.on('data', (chunk: Buffer) => {
      if (stalled) held.push(() => client.write(chunk))
      else client.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const listenPort = typeof address === 'object' && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${listenPort}`,
    get connections () { return connections },
    cut: () => { for (const socket of [...open]) socket.destroy() },
    stall: (on) => {
      stalled = on
      if (!on) for (const write of held.splice(0)) write()
    },
    refuse: (on) => { refusing = on },
    close: async () => {
      for (const socket of [...open]) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
