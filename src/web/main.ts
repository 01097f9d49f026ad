import { Api } from './api.js'
import { LiveUpdates } from './live.js'
import type { LiveMode } from './live.js'
import { h, replaceChildren } from './lib/dom.js'
import { classifierPage } from './pages/classifier-page.js'
import { classifiersPage } from './pages/classifiers-page.js'
import { classifyJobPage } from './pages/classify-job-page.js'
import { dataPage } from './pages/data-page.js'
import type { PageContext, PageView } from './pages/page.js'
import { signInPage } from './pages/sign-in-page.js'
import { solversPage } from './pages/solvers-page.js'
import { trainingJobPage } from './pages/training-job-page.js'
import { trainingJobsPage } from './pages/training-jobs-page.js'
import { clearSession, loadSession, saveSession } from './session.js'
import type { Session } from './session.js'
import { Store } from './store.js'

const NAV = [
  { hash: '#/data', label: 'Data' },
  { hash: '#/solvers', label: 'Solvers' },
  { hash: '#/training-jobs', label: 'Training' },
  { hash: '#/classifiers', label: 'Classifiers' }
]

const MODE_TEXT: Record<LiveMode, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  polling: 'Updating every 5 s (live stream unavailable)'
}

/** Hash routes: the server serves one page at `/`, so every view lives after the `#`. */
function route (ctx: PageContext, hash: string): PageView {
  const [, first = '', second] = hash.replace(/^#/, '').split('/')
  const id = second === undefined || second === '' ? null : decodeURIComponent(second)
  switch (first) {
    case 'solvers': return solversPage(ctx)
    case 'training-jobs': return id === null ? trainingJobsPage(ctx) : trainingJobPage(ctx, id)
    case 'classifiers': return id === null ? classifiersPage(ctx) : classifierPage(ctx, id)
    case 'classify-jobs': return id === null ? classifiersPage(ctx) : classifyJobPage(ctx, id)
    default: return dataPage(ctx)
  }
}

/** The signed-in shell: header with navigation and live status, one page at a time. */
function startApp (root: HTMLElement, session: Session, signOut: (reason?: string) => void): () => void {
  const api = new Api({ authorization: session.authorization, onUnauthorized: () => { signOut('Your session is no longer valid: sign in again.') } })
  const store = new Store()
  const status = h('span', { class: 'live-status', role: 'status', 'data-mode': 'connecting' }, MODE_TEXT.connecting)
  const live = new LiveUpdates({
    api,
    store,
    onMode: (mode) => {
      status.dataset.mode = mode
      status.textContent = MODE_TEXT[mode]
    }
  })
  const main = h('main', { id: 'main', tabindex: '-1' })
  const links = NAV.map((n) => h('a', { href: n.hash }, n.label))
  const signOutButton = h('button', { type: 'button', class: 'link sign-out' }, 'Sign out')
  signOutButton.addEventListener('click', () => { signOut() })
  replaceChildren(root,
    h('a', { href: '#main', class: 'skip-link' }, 'Skip to content'),
    h('header', { class: 'top' },
      h('a', { href: '#/data', class: 'brand' }, 'ElasticThought'),
      h('nav', { 'aria-label': 'Main' }, h('ul', {}, links.map((a) => h('li', {}, a)))),
      h('div', { class: 'who' }, status, h('span', { class: 'user' }, session.username), signOutButton)),
    main)

  // One store and one live connection for the session; pages come and go on top of them.
  const ctx: PageContext = { api, store, live, navigate: (hash) => { location.hash = hash } }
  let page: PageView | null = null
  const show = (): void => {
    // The skip link targets #main; it is not a route.
    if (location.hash === '#main') {
      main.focus()
      return
    }
    page?.dispose()
    page = route(ctx, location.hash)
    replaceChildren(main, page.el)
    document.title = `${page.title} · ElasticThought`
    const current = location.hash.split('/').slice(0, 2).join('/')
    for (const a of links) {
      if (a.getAttribute('href') === current || (current === '#/classify-jobs' && a.getAttribute('href') === '#/classifiers')) a.setAttribute('aria-current', 'page')
      else a.removeAttribute('aria-current')
    }
    // Move focus to the new page so keyboard and screen-reader users land on it.
    main.focus({ preventScroll: true })
  }
  window.addEventListener('hashchange', show)
  if (location.hash === '' || location.hash === '#/' || location.hash === '#main') history.replaceState(null, '', '#/data')
  show()
  live.start()
  return () => {
    window.removeEventListener('hashchange', show)
    page?.dispose()
    live.stop()
    store.clear()
  }
}

function boot (): void {
  const root = document.getElementById('app')
  if (root === null) return
  let stop: (() => void) | null = null
  // Several requests may see the same 401 at once: signing out twice is harmless.
  const signOut = (reason?: string): void => {
    stop?.()
    stop = null
    clearSession()
    showSignIn(reason)
  }
  const signedIn = (session: Session): void => {
    saveSession(session)
    stop = startApp(root, session, signOut)
  }
  const showSignIn = (reason?: string): void => {
    document.title = 'Sign in · ElasticThought'
    replaceChildren(root, signInPage(signedIn, reason))
  }
  const session = loadSession()
  if (session === null) showSignIn()
  else stop = startApp(root, session, signOut)
}

boot()
