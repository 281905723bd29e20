"""Authlib's OAuth 2.0 client (Python), a second implementation of
private_key_jwt (RFC 7523), authenticates to oauth-rs with an ES256 client
assertion at /token, /introspect and /revoke; an assertion signed by a key the
client did not register is refused with invalid_client.

Run by crates/oauth-server/tests/interop.rs with the interpreter of
interop/.venv (packages pinned in interop/requirements.txt).
"""

import json
import os
import sys
import time

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey


def need(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: run this through crates/oauth-server/tests/interop.rs")
    return value


class ShortLived(PrivateKeyJWT):
    """Authlib's assertions live an hour unless told, and the server takes at
    most 5 minutes (SPEC-2). Authlib keeps `claims` across assertions and
    fills it in as it signs, so a dict given once would repeat the first
    assertion's jti (which the server refuses as a replay): each assertion
    gets a fresh one."""

    def sign(self, auth, token_endpoint):
        self.claims = {"exp": int(time.time()) + 120}
        return super().sign(auth, token_endpoint)


def session(jwk):
    # Authlib signs with RS256 unless told, and takes an EC key as a key
    # object; the assertion's aud is the token endpoint's URL, which the
    # server accepts besides its issuer.
    headers = {"kid": jwk["kid"]} if "kid" in jwk else None
    auth = ShortLived(token_endpoint, alg="ES256", headers=headers)
    key = ECKey.import_key(jwk)
    # Revocation has its own method in Authlib (client_secret_basic unless
    # told).
    return OAuth2Session(
        client_id, key, token_endpoint_auth_method=auth, revocation_endpoint_auth_method=auth, scope="read"
    )


issuer = need("ISSUER").rstrip("/")
meta = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
token_endpoint = meta["token_endpoint"]
assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"], meta
client_id = need("KEYS_PLAIN_CLIENT")
key = json.loads(need("KEYS_CLIENT_JWK"))

s = session(key)
token = s.fetch_token(token_endpoint, grant_type="client_credentials")
assert token["token_type"] == "Bearer", token
assert token["scope"] == "read", token

seen = s.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
assert seen["active"] is True and seen["client_id"] == client_id, seen

revoked = s.revoke_token(meta["revocation_endpoint"], token=token["access_token"])
assert revoked.status_code == 200, revoked.text
seen = s.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
assert seen == {"active": False}, seen

stranger = ECKey.generate_key("P-256").as_dict(private=True)
try:
    session(stranger).fetch_token(token_endpoint, grant_type="client_credentials")
    sys.exit("an assertion signed by an unregistered key was accepted")
except OAuthError as e:
    assert e.error == "invalid_client", e

print("ok")
