import type { Api } from '../api.js'
import { h } from '../lib/dom.js'

/** Most log text kept on screen; older text is dropped from the top. */
const MAX_CHARS = 200_000

/**
 * The tail of a job's log, following the run: `GET …/logs?follow=true` read with fetch
 * streaming. The server ends the response when the job ends; a response cut short while the
 * job still runs is resumed from the last byte received (`from=`), so nothing repeats.
 */
export class LogTail {
  readonly el: HTMLElement
  private readonly pre: HTMLPreElement
  private readonly status = h('p', { class: 'muted log-status', 'aria-live': 'polite' })
  private readonly api: Api
  private readonly path: string
  private controller: AbortController | null = null
  private received = 0
  private text = ''
  private ended = false

  constructor (api: Api, path: string, label: string) {
    this.api = api
    this.path = path
    this.pre = h('pre', { class: 'log', tabindex: '0', 'aria-label': label })
    this.el = h('div', { class: 'log-tail' }, this.pre, this.status)
  }

  /** Starts (or resumes) following; `active` is whether the job may still write more. */
  follow (active: boolean): void {
    if (this.controller !== null || (this.ended && !active)) return
    const controller = new AbortController()
    this.controller = controller
    this.status.textContent = active ? 'Following the log…' : ''
    this.read(controller, active).then(() => {
      this.controller = null
      this.ended = true
      this.status.textContent = this.text === '' ? 'The log is empty.' : ''
    }, (err: unknown) => {
      this.controller = null
      if (controller.signal.aborted) return
      this.status.textContent = `The log stream broke (${err instanceof Error ? err.message : 'error'}); retrying…`
      setTimeout(() => { if (!controller.signal.aborted) this.follow(active) }, 2000)
    })
  }

  dispose (): void {
    this.controller?.abort()
    this.controller = null
  }

  private async read (controller: AbortController, active: boolean): Promise<void> {
    const res = await this.api.fetch(`${this.path}?follow=${String(active)}&from=${this.received}`, { signal: controller.signal })
    if (res.body === null) return
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      this.received += value.byteLength
      this.append(decoder.decode(value, { stream: true }))
    }
    this.append(decoder.decode())
  }

  private append (chunk: string): void {
    if (chunk === '') return
    // Follow the bottom only when the reader is already there; never yank them back down.
    const atBottom = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 8
    this.text += chunk
    if (this.text.length > MAX_CHARS) {
      const cut = this.text.indexOf('\n', this.text.length - MAX_CHARS)
      this.text = this.text.slice(cut < 0 ? this.text.length - MAX_CHARS : cut + 1)
    }
    this.pre.textContent = this.text
    if (atBottom) this.pre.scrollTop = this.pre.scrollHeight
  }
}
