"""An identity provider of the tests' own: a real HTTP server on 127.0.0.1 with a discovery
document and a JWKS, keys generated here, rotated and taken down on the test's word."""

import json
import threading
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from credentials import oidc
from credentials.authentication import LAST_USE

AUDIENCE = "communications-api"
REALM_PATH = "/realms/dealers"


class SigningKey:
    def __init__(self, algorithm: str = "RS256"):
        self.algorithm, self.kid = algorithm, f"{algorithm.lower()}-{uuid.uuid4().hex[:8]}"
        if algorithm == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk.update({"kid": self.kid, "use": "sig", "alg": algorithm})


class IdentityProvider:
    """Serves `<issuer>/.well-known/openid-configuration` and the JWKS it names; mints tokens."""

    def __init__(self, server: HTTPServer):
        self.server = server
        self.issuer = server.url_for(REALM_PATH)
        self.keys = [SigningKey()]
        self.hits = {"discovery": 0, "jwks": 0}
        self.delay = 0.0  # seconds each answer waits (a slow provider)
        self.discovery_issuer = self.issuer
        self._lock = threading.Lock()
        server.expect_request(f"{REALM_PATH}/.well-known/openid-configuration").respond_with_handler(self._discovery)
        server.expect_request(f"{REALM_PATH}/protocol/openid-connect/certs").respond_with_handler(self._jwks)

    def _discovery(self, request: Request) -> Response:
        with self._lock:
            self.hits["discovery"] += 1
        time.sleep(self.delay)
        body = {"issuer": self.discovery_issuer, "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs"}
        return Response(json.dumps(body), content_type="application/json")

    def _jwks(self, request: Request) -> Response:
        with self._lock:
            self.hits["jwks"] += 1
        time.sleep(self.delay)
        return Response(json.dumps({"keys": [key.jwk for key in self.keys]}), content_type="application/json")

    @property
    def key(self) -> SigningKey:
        return self.keys[0]

    def rotate(self, algorithm: str = "RS256") -> SigningKey:
        """A new signing key replaces the old one in the JWKS."""
        self.keys = [SigningKey(algorithm)]
        return self.key

    def claims(self, **overrides) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "ivanov",
            "iat": now,
            "exp": now + 300,
            "groups": ["crm-operators"],
            "dealer_uuids": [],
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def token(self, key: SigningKey | None = None, headers: dict | None = None, **claims) -> str:
        key = key or self.key
        headers = {"kid": key.kid, **(headers or {})}
        return jwt.encode(self.claims(**claims), key.private, algorithm=key.algorithm, headers=headers)

    def down(self) -> None:
        self.server.stop()

    def up(self) -> None:
        self.server.start()


@pytest.fixture(autouse=True)
def _no_keys_kept():
    """Each test starts as a new process would: no signing keys fetched, no last use written."""
    oidc.forget()
    LAST_USE.forget()
    yield
    oidc.forget()


@pytest.fixture
def provider(settings):
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    idp = IdentityProvider(server)
    settings.OIDC_ISSUER = idp.issuer
    settings.OIDC_AUDIENCE = AUDIENCE
    settings.OIDC_USERNAME_CLAIM = "sub"
    settings.OIDC_GROUPS_CLAIM = "groups"
    settings.OIDC_GROUPS_MAP = {"crm-operators": "Operators", "crm-auditors": "Auditors"}
    settings.OIDC_DEALERS_CLAIM = "dealer_uuids"
    settings.OIDC_LEEWAY_SECONDS = 30
    settings.OIDC_JWKS_CACHE_SECONDS = 600.0
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 10.0
    settings.OIDC_HTTP_TIMEOUT = 2.0
    settings.OIDC_RETRY_AFTER = 10
    yield idp
    if server.is_running():
        server.stop()
