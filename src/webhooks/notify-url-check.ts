import { lookup } from 'node:dns/promises'
import { isPrivateAddress } from '../net/address-policy.js'
import { ValidationError } from '../lib/errors.js'

/** How long a creation-time DNS check may take before the URL is accepted unchecked. */
const LOOKUP_BUDGET_MS = 2000

/**
 * Refuses, at job creation, a `notify-url` the server would refuse to POST to: one whose host
 * is, or resolves to, a private, loopback or link-local address (the rule of datafile URLs),
 * unless the server allows private URLs. A name that does not resolve now is accepted: DNS may
 * be briefly down, and the sender checks every address again when it connects, so nothing
 * slips through by resolving differently later.
 */
export async function checkNotifyUrl (raw: string, allowPrivate: boolean): Promise<void> {
  if (allowPrivate) return
  const url = new URL(raw)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const refuse = (address: string): never => {
    throw new ValidationError(`body.notify-url: ${host === address ? host : `${host} resolves to ${address}, which`} is a private, loopback or link-local address; webhooks are not sent there unless the server is started with --allow-private-urls`)
  }
  if (isPrivateAddress(host)) refuse(host)
  if (host === 'localhost' || host.endsWith('.localhost')) refuse(host)
  const resolved = await Promise.race([
    lookup(host, { all: true }).catch(() => []),
    new Promise<[]>((resolve) => { setTimeout(() => { resolve([]) }, LOOKUP_BUDGET_MS).unref() })
  ])
  const bad = resolved.find((a) => isPrivateAddress(a.address))
  if (bad !== undefined) refuse(bad.address)
}
