// The baseline for bench:api: a bare Fastify route answering a job-sized JSON document,
// with no auth, no database and no schema — the ceiling this machine allows.
import Fastify from 'fastify'

const doc = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>
const app = Fastify({ logger: false })
app.get('/training-jobs/:id', async () => doc)
const address = await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`${JSON.stringify({ msg: 'bare listening', address })}\n`)
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
