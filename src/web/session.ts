/** The signed-in user: the name to show and the Authorization header value to send. */
export interface Session {
  username: string
  authorization: string
}

// sessionStorage only: the credentials last as long as the tab, are never written to disk by
// localStorage nor sent as a cookie (which would expose the API to cross-site requests).
const KEY = 'elastic-thought.session'

export function basicAuthorization (username: string, password: string): string {
  // btoa takes Latin-1 only: encode as UTF-8 first so any password works.
  const bytes = new TextEncoder().encode(`${username}:${password}`)
  let binary = ''
  for (const b of bytes) binary += String.fromCharCode(b)
  return `Basic ${btoa(binary)}`
}

export function loadSession (): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY)
    if (raw === null) return null
    const value: unknown = JSON.parse(raw)
    if (typeof value !== 'object' || value === null) return null
    const username: unknown = Reflect.get(value, 'username')
    const authorization: unknown = Reflect.get(value, 'authorization')
    return typeof username === 'string' && typeof authorization === 'string' ? { username, authorization } : null
  } catch {
    return null
  }
}

export function saveSession (session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session))
}

export function clearSession (): void {
  sessionStorage.removeItem(KEY)
}
