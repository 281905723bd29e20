// Shared pieces of the interop scripts: the server under test (from the
// environment the Rust harness sets), and a "user" that walks the server's
// login and consent pages the way a browser would, with its own cookie jar.
//
// The client side of every flow is the independent library under test
// (oauth4webapi, openid-client); only the user's clicks are ours.

import assert from 'node:assert/strict'
import { parse } from 'node-html-parser'
import * as oauth from 'oauth4webapi'

/** The server under test, as crates/oauth-server/tests/interop.rs starts it. */
export const env = {
  issuer: need('ISSUER'),
  user: need('USERNAME'),
  password: need('PASSWORD'),
}

export function need(name) {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set: run this through crates/oauth-server/tests/interop.rs`)
  return v
}

/** Options every oauth4webapi call needs: the server runs on plain-http loopback. */
export const insecure = { [oauth.allowInsecureRequests]: true }

/** RFC 8414 discovery with oauth4webapi's strict checks. */
export async function discover(algorithm = 'oauth2') {
  const issuer = new URL(env.issuer)
  const response = await oauth.discoveryRequest(issuer, { algorithm, ...insecure })
  return oauth.processDiscoveryResponse(issuer, response)
}

/** A browser's cookie jar and its way through HTML forms, without JavaScript. */
export class Browser {
  constructor() {
    this.cookies = new Map()
  }

  /** One request, no redirect followed; cookies kept. */
  async fetch(url, init = {}) {
    const headers = new Headers(init.headers ?? {})
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '))
    const response = await fetch(url, { ...init, headers, redirect: 'manual' })
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair.indexOf('=')
      this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
    }
    return response
  }

  /** GET, following 303s within the server, until a page or a redirect elsewhere. */
  async open(url) {
    let response = await this.fetch(url)
    while (response.status === 303 || response.status === 302) {
      const next = new URL(response.headers.get('location'), url)
      if (next.origin !== new URL(env.issuer).origin) return { location: next }
      url = next
      response = await this.fetch(url)
    }
    return { response, url, html: await response.text() }
  }

  /** Submits the form posting to `action` on `page`, with `fields` filled in. */
  async submit(page, action, fields = {}, button = undefined) {
    const root = parse(page.html)
    const form = root.querySelectorAll('form').find((f) => new URL(f.getAttribute('action'), page.url).pathname.endsWith(action))
    assert.ok(form, `no form posting to ${action} on ${page.url}:\n${page.html}`)
    const body = new URLSearchParams()
    for (const input of form.querySelectorAll('input')) {
      const name = input.getAttribute('name')
      if (!name || input.getAttribute('type') === 'submit') continue
      body.set(name, fields[name] ?? input.getAttribute('value') ?? '')
    }
    if (button) body.set(button.name, button.value)
    const target = new URL(form.getAttribute('action'), page.url)
    const response = await this.fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    })
    return { response, url: target }
  }

  /**
   * The user's part of an authorization: opens `authorizationUrl`, logs in if
   * the login page shows, approves on the consent page, and returns the URL
   * the server sent the browser back to.
   */
  async authorize(authorizationUrl) {
    let page = await this.open(authorizationUrl)
    if (page.location) return page.location
    if (page.html.includes('action="') && page.html.includes('name="password"')) {
      const { response, url } = await this.submit(page, '/authorize/login', { username: env.user, password: env.password })
      assert.equal(response.status, 303, `login answered ${response.status}`)
      page = await this.open(new URL(response.headers.get('location'), url))
      if (page.location) return page.location
    }
    const { response } = await this.submit(page, '/authorize/consent', {}, { name: 'decision', value: 'approve' })
    assert.equal(response.status, 303, `consent answered ${response.status}`)
    return new URL(response.headers.get('location'))
  }
}

/** Runs `main`, printing the error and exiting 1 on failure, so the Rust test sees it. */
export function run(main) {
  main().then(
    () => console.log('ok'),
    (e) => {
      console.error(e?.stack ?? e)
      if (e?.cause) console.error('cause:', e.cause)
      process.exit(1)
    },
  )
}
