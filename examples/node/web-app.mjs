// A server-side web app that signs users in with the OAuth 2.0 code flow
// (PKCE, a confidential client), with panva's openid-client, and calls an API
// with the access token. The tokens stay on the server; the browser holds
// only an opaque session cookie.
//
//   npm install openid-client
//   ISSUER=http://127.0.0.1:8080 CLIENT_ID=demo-app CLIENT_SECRET=... node web-app.mjs
//
// The quick start's demo-app is registered with redirect URI
// http://127.0.0.1:9000/callback, where this app listens by default.

import http from 'node:http'
import { randomBytes } from 'node:crypto'
import * as client from 'openid-client'

const issuer = new URL(process.env.ISSUER ?? 'http://127.0.0.1:8080')
const port = Number(process.env.PORT ?? 9000)
const base = `http://127.0.0.1:${port}`
const redirectUri = `${base}/callback`

// RFC 8414 discovery: this app uses OAuth only (for OpenID Connect, see the
// guide's "Signing in with OpenID Connect").
const config = await client.discovery(
  issuer,
  process.env.CLIENT_ID,
  undefined,
  client.ClientSecretBasic(process.env.CLIENT_SECRET),
  { algorithm: 'oauth2', execute: issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [] },
)

// In memory for the example; a real app keeps these in its session store.
const logins = new Map() // login id -> { verifier, state }
const sessions = new Map() // session id -> token response

const newId = () => randomBytes(32).toString('base64url')
const cookie = (req, name) =>
  (req.headers.cookie ?? '').split(';').map((c) => c.trim().split('=')).find(([k]) => k === name)?.[1]
// HttpOnly, SameSite=Lax; add Secure when the app is served over https.
const setCookie = (name, value) => `${name}=${value}; Path=/; HttpOnly; SameSite=Lax`

async function route(req, res) {
  const url = new URL(req.url, base)

  if (url.pathname === '/login') {
    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const id = newId()
    logins.set(id, { verifier, state })
    const to = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'read',
      state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    })
    res.writeHead(303, { location: to.href, 'set-cookie': setCookie('app_login', id) }).end()
    return
  }

  if (url.pathname === '/callback') {
    const id = cookie(req, 'app_login')
    const login = logins.get(id)
    logins.delete(id)
    if (!login) {
      res.writeHead(400).end('no sign-in in progress')
      return
    }
    // Checks state and iss (RFC 9207), then redeems the code with the secret.
    const tokens = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: login.verifier,
      expectedState: login.state,
    })
    const session = newId()
    sessions.set(session, tokens)
    res.writeHead(303, { location: '/', 'set-cookie': setCookie('app_session', session) }).end()
    return
  }

  if (url.pathname === '/') {
    const tokens = sessions.get(cookie(req, 'app_session'))
    if (!tokens) {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<a href="/login">Sign in</a>')
      return
    }
    // An API call with the access token: here the server's own /userinfo.
    const response = await client.fetchProtectedResource(
      config, tokens.access_token, new URL(`${issuer.href.replace(/\/$/, '')}/userinfo`), 'GET',
    )
    const user = await response.json()
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`signed in as ${user.username} (scope ${tokens.scope})`)
    return
  }

  res.writeHead(404).end()
}

http
  .createServer((req, res) => route(req, res).catch((e) => res.writeHead(500).end(String(e))))
  .listen(port, '127.0.0.1', () => console.log(`listening on ${base}`))
