import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import { Created, DatafileView, UserView, parseAnswer } from '../api-types.js'
import { CliError, UsageError } from '../cli-error.js'
import type { Command, CommandContext } from '../command.js'
import { bytes } from '../format.js'
import type { FormPart } from '../multipart-body.js'
import { listImageFolder, packImageFolder } from '../pack-folder.js'
import { waitForJob } from '../wait-job.js'

const waitOption = { type: 'boolean', help: 'wait until the server has checked the datafile, and report its labels' } as const

export const datafileCommands: Command[] = [{
  name: 'datafile upload',
  summary: 'upload a folder of <label>/<image> files (packed on the fly) or a .tar.gz',
  usage: 'et datafile upload <dir|file.tar.gz> [--name <name>] [--wait]',
  description: `A folder is packed into a .tar.gz while it is uploaded (nothing is written to disk);
it must hold one subfolder per label with the images directly inside, e.g. cats/001.jpg.
A file is uploaded as it is. Prints the new datafile's id.`,
  options: {
    name: { type: 'string', value: 'name', help: 'a name for the datafile (default: the folder or file name)' },
    wait: waitOption
  },
  run: async (ctx, args) => {
    const [path = ''] = args.expect(['dir|file.tar.gz'])
    let info
    try {
      info = await stat(path)
    } catch {
      throw new UsageError(`${path}: no such file or folder`, 'datafile upload')
    }
    const client = await ctx.client()
    // Fail on bad credentials before streaming anything.
    parseAnswer(UserView, await client.get('/users/me'), 'GET /users/me')
    const name = args.string('name') ?? basename(resolve(path))
    const parts: FormPart[] = [{ kind: 'field', name: 'name', value: name }]
    let onSent: (sent: number) => void
    let summary: string
    if (info.isDirectory()) {
      const folder = await listImageFolder(path)
      let packed = 0
      parts.push({ kind: 'file', name: 'file', filename: `${name.replace(/\.tar\.gz$/, '')}.tar.gz`, contentType: 'application/gzip', open: () => packImageFolder(folder, (n) => { packed = n }) })
      onSent = (sent) => { ctx.term.status(`uploading ${name}: ${packed}/${folder.entries.length} images packed, ${bytes(sent)} sent`) }
      summary = `${folder.entries.length} images in ${folder.labels.length} labels, ${bytes(folder.bytes)}`
    } else {
      parts.push({ kind: 'file', name: 'file', filename: basename(path), contentType: 'application/gzip', size: info.size, open: () => createReadStream(path) })
      onSent = (sent) => { ctx.term.status(`uploading ${basename(path)}: ${Math.min(100, Math.round(sent / Math.max(1, info.size) * 100))}% of ${bytes(info.size)}`) }
      summary = bytes(info.size)
    }
    const created = parseAnswer(Created, await client.upload('/datafiles', parts, onSent), 'POST /datafiles')
    ctx.term.note(`datafile ${created.id} uploaded (${summary})`)
    return await finish(ctx, created, args.flag('wait'))
  }
}, {
  name: 'datafile add',
  summary: 'have the server download a datafile from a URL',
  usage: 'et datafile add <url> [--name <name>] [--wait]',
  description: 'The server fetches the .tar.gz itself (private addresses are refused unless it allows them). Prints the new datafile\'s id.',
  options: {
    name: { type: 'string', value: 'name', help: 'a name for the datafile (default: the last part of the URL)' },
    wait: waitOption
  },
  run: async (ctx, args) => {
    const [url = ''] = args.expect(['url'])
    if (!/^https?:\/\//i.test(url)) throw new UsageError(`not an http(s) URL: ${url}`, 'datafile add')
    const client = await ctx.client()
    const name = args.string('name')
    const created = parseAnswer(Created, await client.post('/datafiles', { url, ...(name === undefined ? {} : { name }) }), 'POST /datafiles')
    ctx.term.note(`datafile ${created.id} created; the server downloads ${url}`)
    return await finish(ctx, created, args.flag('wait'))
  }
}]

async function finish (ctx: CommandContext, created: { id: string }, wait: boolean): Promise<number> {
  if (!wait) {
    ctx.result(created, `${created.id}\n`)
    return 0
  }
  const done = await waitForJob(ctx.term, await ctx.client(), '/datafiles', created.id, DatafileView, `checking datafile ${created.id}`)
  if (done['processing-state'] !== 'finished_successfully') {
    if (ctx.json) ctx.result(done, '')
    throw new CliError(`datafile ${created.id} ${done['processing-state']}: ${done['processing-log']}`)
  }
  ctx.term.note(`datafile ${created.id} ready: ${done['image-count'] ?? '?'} images, labels ${(done.labels ?? []).join(', ')}`)
  ctx.result(done, `${created.id}\n`)
  return 0
}
