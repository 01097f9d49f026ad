// Docker HEALTHCHECK: a server is healthy when GET /health answers 200 (CouchDB and the
// blob store reachable). Workers and one-shot commands have no port to probe; their
// liveness is the process itself, so they always pass.
import { readFileSync } from 'node:fs'
import { request } from 'node:http'

let role = 'server'
try {
  role = readFileSync(process.env.ET_ROLE_FILE ?? '/tmp/elastic-thought.role', 'utf8').trim()
} catch {
  // No role file yet: the entry point has not run, so probe as a server would.
}
if (role !== 'server') process.exit(0)

const port = Number(process.env.ET_PORT ?? '8080')
const req = request({ host: '127.0.0.1', port, path: '/health', timeout: 4000 }, (res) => {
  res.resume()
  process.exit(res.statusCode === 200 ? 0 : 1)
})
req.on('timeout', () => req.destroy(new Error('timed out')))
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${err.message}\n`)
  process.exit(1)
})
req.end()
