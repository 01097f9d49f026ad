import { lookup as dnsLookup } from 'node:dns'
import type { LookupAddress } from 'node:dns'
import { BlockList, isIP } from 'node:net'

/**
 * Addresses a server-side fetch must not reach unless the operator allows it: loopback,
 * private, carrier-grade NAT, link-local (cloud metadata lives at 169.254.169.254), multicast,
 * reserved and unspecified ranges, in IPv4 and IPv6 (incl. IPv4-mapped IPv6).
 */
const blocked = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]
] as const) blocked.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['2001:db8::', 32], ['64:ff9b::', 96], ['100::', 64]
] as const) blocked.addSubnet(net, prefix, 'ipv6')

/** True when `address` (an IP literal) is in a range that is refused by default. */
export function isPrivateAddress (address: string): boolean {
  const bare = address.startsWith('[') ? address.slice(1, -1) : address
  const family = isIP(bare)
  if (family === 4) return blocked.check(bare, 'ipv4')
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)
    if (mapped?.[1] !== undefined) return blocked.check(mapped[1], 'ipv4')
    return blocked.check(bare, 'ipv6')
  }
  return false
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/**
 * A dns.lookup for undici's `connect.lookup` that refuses a host if ANY address it resolves
 * to is private (connecting to the first public one would still let a second, private record
 * be used on a retry), so DNS rebinding cannot slip past a check made before connecting.
 * `allowedBy` completes the refusal message: what the operator must do to allow it.
 */
export function publicOnlyLookup (allowedBy: string): (hostname: string, options: object, callback: LookupCallback) => void {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err !== null) { callback(err, []); return }
      const bad = addresses.find((a) => isPrivateAddress(a.address))
      if (bad !== undefined) {
        const refusal: NodeJS.ErrnoException = new Error(`${hostname} resolves to ${bad.address}, a private, loopback or link-local address (${allowedBy})`)
        refusal.code = 'ET_PRIVATE_ADDRESS'
        callback(refusal, [])
        return
      }
      if (Reflect.get(options, 'all') === true) callback(null, addresses)
      else callback(null, addresses[0]?.address ?? '', addresses[0]?.family ?? 4)
    })
  }
}
