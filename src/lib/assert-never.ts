/** Exhaustiveness check for discriminated unions: a new variant becomes a compile error here. */
export function assertNever (value: never, message = 'unexpected variant'): never {
  throw new Error(`${message}: ${JSON.stringify(value)}`)
}
