import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'

const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']
const DAV_EXT_MODULE = '/usr/lib/nginx/modules/ngx_http_dav_ext_module.so'

export interface NginxWebdavOptions {
  /** Load the dav-ext module and allow PROPFIND (Debian: libnginx-mod-http-dav-ext). */
  propfind: boolean
}

export interface NginxWebdav {
  /** `http://127.0.0.1:<port>/` */
  url: string
  /** The directory nginx serves (the blobs as files). */
  root: string
  close: () => Promise<void>
}

/**
 * Starts a real nginx (Debian `nginx-light`) with its WebDAV module on a random loopback
 * port: `daemon off`, single process, every path (pid, logs, temp files) inside a temp
 * dir, so it runs as any user and leaves nothing behind. Listing is nginx's JSON autoindex,
 * plus PROPFIND when `propfind` is set. `index .none` keeps a blob named index.html from
 * replacing a directory listing (keys never start with '.').
 */
export async function startNginxWebdav (options: NginxWebdavOptions): Promise<NginxWebdav> {
  const binary = await findNginx()
  if (options.propfind && !await exists(DAV_EXT_MODULE)) {
    throw new Error(`nginx dav-ext module missing at ${DAV_EXT_MODULE}: apt-get install -y libnginx-mod-http-dav-ext`)
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'et-nginx-'))
  const root = path.join(dir, 'data')
  await Promise.all(['data', 'logs', 'tmp'].map(async (sub) => await mkdir(path.join(dir, sub))))
  let lastError: unknown
  // The port is picked by binding 0 and releasing it; another process may grab it in
  // between, so a failed start is retried on a fresh port.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const conf = path.join(dir, 'nginx.conf')
    await writeFile(conf, config(dir, root, port, options.propfind))
    const child = spawn(binary, ['-p', dir, '-c', conf, '-e', path.join(dir, 'logs', 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    try {
      await waitForPort(child, port)
      return {
        url: `http://127.0.0.1:${port}/`,
        root,
        close: async () => {
          await stop(child)
          await rm(dir, { recursive: true, force: true })
        }
      }
    } catch (err) {
      await stop(child)
      const log = await readFile(path.join(dir, 'logs', 'error.log'), 'utf8').catch(() => '')
      lastError = new Error(`nginx did not start: ${err instanceof Error ? err.message : String(err)}\n${stderr}${log}`)
    }
  }
  await rm(dir, { recursive: true, force: true })
  throw lastError
}

function config (dir: string, root: string, port: number, propfind: boolean): string {
  const tmp = path.join(dir, 'tmp')
  return `${propfind ? `load_module ${DAV_EXT_MODULE};\n` : ''}daemon off;
master_process off;
worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'logs', 'error.log')} warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  types {
    application/json json;
    text/plain txt log;
    image/png png;
    application/gzip gz;
  }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    client_max_body_size 0;
    location / {
      dav_methods PUT DELETE MKCOL;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
${propfind ? '      dav_ext_methods PROPFIND OPTIONS;\n' : ''}      autoindex on;
      autoindex_format json;
      index .none;
    }
  }
}
`
}

async function findNginx (): Promise<string> {
  for (const candidate of NGINX_CANDIDATES) {
    if (await exists(candidate)) return candidate
  }
  throw new Error('nginx is not installed: apt-get install -y nginx-light libnginx-mod-http-dav-ext')
}

async function exists (file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function waitForPort (child: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nginx exited (${child.exitCode ?? child.signalCode ?? ''})`)
    // Ask over HTTP rather than just connecting: whoever took the port must be nginx.
    const server = await new Promise<string | undefined>((resolve) => {
      const req = get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.resume()
        const value = res.headers.server
        resolve(Array.isArray(value) ? value[0] : value)
      })
      req.once('error', () => resolve(undefined))
    })
    if (server?.startsWith('nginx') === true) return
    if (server !== undefined) throw new Error(`port ${port} is served by ${server}, not nginx`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('nginx did not open its port within 10 s')
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}
