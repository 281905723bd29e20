"""The fixture of the schemathesis run (see schemathesis.rs): real accounts,
clients and grants made through the server's own APIs before the fuzzing
starts, so that the operations taking an id change and delete existing
things, not only unknown ids.

Usage: schemathesis_seed.py ADMIN_URL PUBLIC_URL ADMIN_TOKEN SEEDER_SECRET COUNT

Prints one JSON object: for each pool, the ids in it. Each pool serves one
kind of operation, so that deletions do not empty the pool that changes use.
Only the standard library is used: it runs with the interpreter of
schemathesis's virtual environment.
"""

import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request


def call(method, url, token=None, body=None, form=None, basic=None):
    headers = {}
    data = None
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    if basic is not None:
        pair = (basic[0] + ":" + basic[1]).encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{method} {url}: {error.code} {error.read()[:500]!r}")


def main():
    admin, public, token, seeder_secret, count = sys.argv[1:6]
    count = int(count)
    pools = {name: [] for name in ("patch_accounts", "delete_accounts", "grant_accounts",
                                   "clients", "delete_clients", "grants")}

    def account(prefix, i, password=None):
        body = {"username": f"{prefix}-{i}", "attributes": {"seeded": "yes"}}
        if password is not None:
            body["password"] = password
        status, created = call("POST", admin + "/admin/accounts", token, body=body)
        assert status == 201, created
        return created["id"]

    def client(prefix, i):
        body = {"client_id": f"{prefix}-{i}", "grant_types": ["client_credentials"], "scope": "read",
                "token_endpoint_auth_method": "client_secret_basic"}
        status, created = call("POST", admin + "/admin/clients", token, body=body)
        assert status == 201, created
        return created["client_id"]

    for i in range(count):
        pools["patch_accounts"].append(account("seed-patch", i))
        pools["delete_accounts"].append(account("seed-delete", i))
        pools["clients"].append(client("seed-client", i))
        pools["delete_clients"].append(client("seed-delete", i))
    # Grants: each password grant of an account is one grant of its own.
    password = "seed password, not a secret"
    for i in range(count):
        owner = account("seed-grant", i, password)
        pools["grant_accounts"].append(owner)
        for _ in range(2):
            status, tokens = call("POST", public + "/token", basic=("seeder", seeder_secret), form={
                "grant_type": "password", "username": f"seed-grant-{i}", "password": password, "scope": "read"})
            assert status == 200 and "refresh_token" in tokens, tokens
        status, grants = call("GET", admin + f"/admin/accounts/{owner}/grants", token)
        assert status == 200 and len(grants["items"]) == 2, grants
        pools["grants"].extend(g["id"] for g in grants["items"])
    print(json.dumps(pools))


if __name__ == "__main__":
    main()
