import { h } from './dom.js'

/** A field of a document read as a string, or '' when absent. */
export function str (doc: Record<string, unknown>, key: string): string {
  const value = doc[key]
  return typeof value === 'string' ? value : ''
}

export function num (doc: Record<string, unknown>, key: string): number | null {
  const value = doc[key]
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

export function obj (value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : null
}

/** Ids are 32 hex characters; the first 8 tell them apart on a screen. */
export function shortId (id: string): string {
  return id.length > 12 ? id.slice(0, 8) : id
}

export function bytes (n: number | null): string {
  if (n === null) return ''
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

/** A loss or rate: exponent form once it is too small for a handful of decimals to show. */
export function metric (n: number | null | undefined, digits = 4): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–'
  if (n !== 0 && Math.abs(n) < 1e-3) return n.toExponential(2)
  return String(Number(n.toFixed(digits)))
}

/** A timestamp as a <time> element: local time shown, ISO in the attribute and the tooltip. */
export function when (iso: string): HTMLElement {
  if (iso === '') return h('span', {}, '–')
  const date = new Date(iso)
  const sameDay = date.toDateString() === new Date().toDateString()
  const text = sameDay ? date.toLocaleTimeString() : date.toLocaleString()
  return h('time', { datetime: iso, title: iso }, text)
}

export function duration (fromIso: string, toIso: string): string {
  if (fromIso === '') return ''
  const ms = (toIso === '' ? Date.now() : Date.parse(toIso)) - Date.parse(fromIso)
  if (!Number.isFinite(ms) || ms < 0) return ''
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

const STATE_TEXT: Record<string, string> = {
  pending: 'pending',
  processing: 'processing',
  finished_successfully: 'finished',
  failed: 'failed',
  cancelled: 'cancelled'
}

/** A processing state in words ("finished" for finished_successfully). */
export function stateText (state: string): string {
  return STATE_TEXT[state] ?? state
}

/** A job's processing state as a coloured badge; the text carries the meaning, not the colour. */
export function stateBadge (state: string): HTMLElement {
  if (state === '') return h('span', { class: 'state' }, '–')
  return h('span', { class: `state state-${state}`, title: state }, STATE_TEXT[state] ?? state)
}

export function isActive (state: string): boolean {
  return state === 'pending' || state === 'processing'
}
