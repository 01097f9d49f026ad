import { Api, ApiError } from '../api.js'
import { Notice, field, h } from '../lib/dom.js'
import { basicAuthorization } from '../session.js'
import type { Session } from '../session.js'

/**
 * The sign-in form. The credentials are checked with `GET /users/me` before they are kept,
 * so a wrong password is reported here rather than by the first list that fails to load.
 */
export function signInPage (onSignedIn: (session: Session) => void, reason?: string): HTMLElement {
  const notice = new Notice()
  if (reason !== undefined) notice.error(reason)
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' })
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true })
  const submit = h('button', { type: 'submit' }, 'Sign in')
  const form = h('form', { class: 'card sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'Sign in to ElasticThought'),
    field('Username', username),
    field('Password', password),
    h('div', { class: 'actions' }, submit),
    notice.el,
    h('p', { class: 'hint' }, 'Your account is the one the API uses (HTTP Basic). No account yet? Create one with ',
      h('code', {}, 'POST /users'), ' — see ', h('a', { href: '/documentation' }, 'the API documentation'), '.'))
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    notice.clear()
    const session = { username: username.value.trim(), authorization: basicAuthorization(username.value.trim(), password.value) }
    submit.disabled = true
    form.setAttribute('aria-busy', 'true')
    new Api({ authorization: session.authorization }).json('/users/me').then(() => {
      onSignedIn(session)
    }, (err: unknown) => {
      if (err instanceof ApiError && err.status === 401) notice.error('Wrong username or password.')
      else if (err instanceof ApiError && err.status === 403) notice.error('This account cannot use the dashboard (the admin account only creates users).')
      else notice.error(err instanceof Error ? err.message : String(err))
      password.select()
      password.focus()
    }).finally(() => {
      submit.disabled = false
      form.removeAttribute('aria-busy')
    })
  })
  queueMicrotask(() => { username.focus() })
  return h('main', { id: 'main', class: 'sign-in-main' }, form)
}
