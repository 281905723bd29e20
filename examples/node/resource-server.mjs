// A resource server in Node.js: an API that accepts oauth-rs access tokens
// (RFC 9068 JWTs), verified with panva's jose against the server's JWKS.
//
//   npm install jose
//   ISSUER=http://127.0.0.1:8080 node resource-server.mjs   # GET http://127.0.0.1:8091/records
//
// A JWT says nothing of a revocation after it was minted: an API that must
// refuse a revoked token at once asks the server's /introspect instead.

import http from 'node:http'
import { createRemoteJWKSet, jwtVerify } from 'jose'

const issuer = process.env.ISSUER ?? 'http://127.0.0.1:8080'
// The server's tokens.audience; by default its issuer.
const audience = process.env.AUDIENCE ?? issuer
const port = Number(process.env.PORT ?? 8091)

const metadata = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()
// Fetched once, then again when a token names a key id it does not know.
const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri))

function refuse(res, status, challenge) {
  res.writeHead(status, { 'www-authenticate': `Bearer realm="records"${challenge}` }).end()
}

http
  .createServer(async (req, res) => {
    const token = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(req.headers.authorization ?? '')?.[1]
    if (!token) return refuse(res, 401, '')
    let payload
    try {
      // The algorithm list is the server's signing_alg: never take it from the token.
      ;({ payload } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt', algorithms: ['ES256'] }))
    } catch {
      return refuse(res, 401, ', error="invalid_token"')
    }
    if (!String(payload.scope ?? '').split(' ').includes('read')) {
      return refuse(res, 403, ', error="insufficient_scope", scope="read"')
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ records: [], sub: payload.sub, client_id: payload.client_id }))
  })
  .listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`))
