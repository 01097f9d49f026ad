import { WebhookSecret, parseAnswer } from '../api-types.js'
import type { Command } from '../command.js'

export const webhookSecretCommands: Command[] = [{
  name: 'webhook-secret',
  summary: 'print (or --rotate) the secret that signs your webhooks',
  usage: 'et webhook-secret [--rotate]',
  description: `Webhooks carry X-ElasticThought-Signature: t=<unix seconds>,v1=<hex>, where hex is
HMAC-SHA256 with this secret over "<t>.<raw body>". The secret is made on first use.
--rotate replaces it; webhooks sent from then on use the new one.`,
  options: {
    rotate: { type: 'boolean', help: 'replace the secret with a new one' }
  },
  run: async (ctx, args) => {
    args.expect([])
    const client = await ctx.client()
    const answer = args.flag('rotate') ? await client.post('/users/me/webhook-secret') : await client.get('/users/me/webhook-secret')
    const secret = parseAnswer(WebhookSecret, answer, '/users/me/webhook-secret')
    ctx.result(secret, `${secret.secret}\n`)
    return 0
  }
}]
