// panva's oidc-provider set up as SPEC-2's peer: client_credentials with ES256
// JWT access tokens (RFC 9068), one confidential client, two workers (one per
// core, node's cluster module sharing the port). Started by
// crates/oauth-bench/src/peer.rs, which reads the port, the client and its
// secret from the environment, and ends it (and so its workers) by PID.
//
// The in-memory adapter is the only store: a client_credentials token in JWT
// form is not stored, so no store is on the measured path, as none is on
// oauth-server's.

import cluster from 'node:cluster';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PEER_PORT);
const workers = Number(process.env.PEER_WORKERS || 2);

if (cluster.isPrimary) {
  // One signing key for every worker, made here and handed down.
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'peer' };
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork({ PEER_JWK: JSON.stringify(jwk) }).on('message', (m) => {
      // The bench waits for this line before it loads the peer.
      if (m === 'listening' && ++listening === workers) console.log(`listening on 127.0.0.1:${port}`);
    });
  }
  cluster.on('exit', (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
  // Ended by the bench: take the workers down too.
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: process.env.PEER_CLIENT_ID,
      client_secret: process.env.PEER_CLIENT_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [JSON.parse(process.env.PEER_JWK)] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // The only way to a JWT access token in oidc-provider: a resource server
      // whose tokens are ES256 JWTs, used when the client names none.
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'https://api.example',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'read',
          audience: 'https://api.example',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  provider.listen(port, '127.0.0.1', () => process.send('listening'));
}
