"""A stand-in identity provider for the API benchmark: discovery document and JWKS on 127.0.0.1.

The benchmark's gunicorn is configured with it (`env()`): OIDC_ISSUER, OIDC_AUDIENCE, and a group
mapping that gives the employee the benchmark user's read permission. `token()` mints an RS256
access token, as Keycloak would, valid for two hours. The server counts what it answers, so the
benchmark can show the keys were fetched once, not per request.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "communications-bench"
REALM = "/realms/bench"
GROUP = "bench-readers"
DJANGO_GROUP = "bench readers"  # bench/load.py gives it the view permission


class IdentityProvider:
    def __init__(self):
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key())), "kid": "bench-1"}
        self.jwk.update({"use": "sig", "alg": "RS256"})
        self.hits = {"discovery": 0, "jwks": 0}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == f"{REALM}/.well-known/openid-configuration":
                    provider.hits["discovery"] += 1
                    body = {"issuer": provider.issuer, "jwks_uri": f"{provider.issuer}/protocol/openid-connect/certs"}
                elif self.path == f"{REALM}/protocol/openid-connect/certs":
                    provider.hits["jwks"] += 1
                    body = {"keys": [provider.jwk]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}{REALM}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_AUDIENCE": AUDIENCE,
            "OIDC_USERNAME_CLAIM": "preferred_username",
            "OIDC_GROUPS_MAP": f"{GROUP}={DJANGO_GROUP}",
        }

    def token(self, username: str = "bench-employee") -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "2b1e6c1e-0f1a-4c1e-9a53-2f1c1d9c0b01",
            "preferred_username": username,
            "iat": now,
            "exp": now + 7200,
            "groups": [GROUP],
            "dealer_uuids": ["0b7e4a52-1d3f-4c1e-9a53-2f1c1d9c0001"],
        }
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.jwk["kid"]})

    def close(self) -> None:
        self.server.shutdown()
