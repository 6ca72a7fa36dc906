"""Bearer tokens from the company's identity provider: OIDC access tokens as JWTs (RFC 9068).

The provider is `OIDC_ISSUER`; its signing keys come from the `jwks_uri` of its discovery
document (`<issuer>/.well-known/openid-configuration`), fetched with PyJWT's `PyJWKClient`:

- kept for `OIDC_JWKS_CACHE_SECONDS`, then fetched again when a token needs them: never per request;
- a token signed with a key not in the set (the provider rotated its keys) fetches the set again,
  at most once every `OIDC_JWKS_MIN_REFRESH_SECONDS`, so made-up `kid`s cannot make the service
  hammer the provider; within that time such a token is refused as signed by an unknown key;
- every fetch has a timeout (`OIDC_HTTP_TIMEOUT`); a fetch that fails is not tried again for
  `OIDC_RETRY_AFTER` seconds. Meanwhile tokens signed by a key already known are verified with
  the keys last fetched, and a token whose key is unknown answers 503 with `Retry-After`: the
  service cannot tell whether it is good.

A token is verified for its signature (RS256 or ES256 only, with the key the `kid` names and the
algorithm that key is for: never `none`, never HMAC with a public key), `iss`, `aud`, and `exp`
and `nbf` with `OIDC_LEEWAY_SECONDS` of leeway. Each refusal has its own code and description.

A client sends the same token until it expires; once verified, its claims are kept (by the
token's SHA-256, per process, a few thousand tokens at most) until its `exp`, and no longer than
the keys themselves are kept, so the signature is checked once, not on every request.
"""

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings
from jwt import PyJWK, PyJWKClient

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256", "ES256")
# Longer than any access token a provider issues (Azure AD's with many groups: about 4 KB).
MAX_TOKEN_LENGTH = 16_384
# Verified tokens kept per process (their claims, until they expire).
VERIFIED_TOKENS_KEPT = 4096


class TokenRejected(Exception):
    """A token the service refuses: `code` for the error body, `description` for people."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code, self.description = code, description


class ProviderUnavailable(Exception):
    """The provider cannot be asked for its keys now; `retry_after` seconds until it is asked again."""

    def __init__(self, retry_after: int):
        super().__init__(f"identity provider unavailable; retry after {retry_after} s")
        self.retry_after = retry_after


# The refusals, each its own code (the error body) and description (also in WWW-Authenticate).
MALFORMED = ("token_malformed", "The bearer token is not a well-formed JWT.")
ALGORITHM = ("token_algorithm_not_allowed", "The token's signing algorithm is not allowed (RS256 or ES256 only).")
KEY_MISMATCH = ("token_algorithm_not_allowed", "The token's algorithm is not the one its signing key is for.")
NO_KID = ("token_key_unknown", "The token names no signing key (kid).")
KEY_UNKNOWN = ("token_key_unknown", "The token is signed with a key the identity provider does not publish.")
SIGNATURE = ("token_signature_invalid", "The token's signature does not verify.")
EXPIRED = ("token_expired", "The token has expired.")
NOT_YET_VALID = ("token_not_yet_valid", "The token is not valid yet (nbf or iat in the future).")
ISSUER = ("token_issuer_invalid", "The token was not issued by this service's identity provider (iss).")
AUDIENCE = ("token_audience_invalid", "The token is not meant for this service (aud).")


CLAIM_INVALID = "token_claim_invalid"
REFUSAL_CODES = sorted(
    {
        code
        for code, _ in (MALFORMED, ALGORITHM, NO_KID, KEY_UNKNOWN, SIGNATURE, EXPIRED, NOT_YET_VALID, ISSUER, AUDIENCE)
    }
    | {CLAIM_INVALID}
)


def missing_claim(name: str) -> TokenRejected:
    return TokenRejected(CLAIM_INVALID, f"The token lacks the {name} claim, or it is malformed.")


@dataclass(frozen=True)
class Config:
    issuer: str
    audience: str
    leeway: int
    cache_seconds: float
    min_refresh_seconds: float
    timeout: float
    retry_after: int

    @classmethod
    def from_settings(cls) -> "Config | None":
        if not settings.OIDC_ISSUER:
            return None
        return cls(
            issuer=settings.OIDC_ISSUER,
            audience=settings.OIDC_AUDIENCE,
            leeway=settings.OIDC_LEEWAY_SECONDS,
            cache_seconds=settings.OIDC_JWKS_CACHE_SECONDS,
            min_refresh_seconds=settings.OIDC_JWKS_MIN_REFRESH_SECONDS,
            timeout=settings.OIDC_HTTP_TIMEOUT,
            retry_after=settings.OIDC_RETRY_AFTER,
        )


class _FetchFailed(Exception):
    pass


class KeySet:
    """The provider's signing keys, per process; see the module's docstring for when they are fetched."""

    def __init__(self, config: Config):
        self.config = config
        self._lock = threading.Lock()
        self._client: PyJWKClient | None = None
        self._keys: list[PyJWK] | None = None  # the last fetched, kept past their lifespan for outages
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self.fetches = 0  # successful fetches of the key set (tests and logs)
        # sha256(token) -> (valid until, the kid it was signed with, its claims)
        self._verified: OrderedDict[str, tuple[float, str, dict[str, Any]]] = OrderedDict()

    def verified(self, token: str) -> dict[str, Any] | None:
        """The claims of `token` if this process verified it, it has not expired since, and the
        provider still publishes its key (a key dropped from the set drops its tokens)."""
        entry = self._verified.get(hashlib.sha256(token.encode()).hexdigest())
        if entry is None or entry[0] <= time.time() or PyJWKClient.match_kid(self._keys or [], entry[1]) is None:
            return None
        return entry[2]

    def remember(self, token: str, kid: str, claims: dict[str, Any]) -> None:
        until = min(float(claims["exp"]), time.time() + self.config.cache_seconds)
        with self._lock:
            self._verified[hashlib.sha256(token.encode()).hexdigest()] = (until, kid, claims)
            while len(self._verified) > VERIFIED_TOKENS_KEPT:
                self._verified.popitem(last=False)  # the oldest first

    def signing_key(self, kid: str) -> PyJWK:
        with self._lock:
            key = PyJWKClient.match_kid(self._current(), kid)
            if key is None and self._may_refresh():
                key = PyJWKClient.match_kid(self._fetch(), kid)
            if key is None:
                raise TokenRejected(*KEY_UNKNOWN)
            return key

    def _current(self) -> list[PyJWK]:
        cache = self._client.jwk_set_cache if self._client is not None else None
        if cache is not None and cache.get() is not None and self._keys is not None:
            return self._keys
        try:
            return self._fetch()
        except ProviderUnavailable:
            if self._keys is not None:
                return self._keys  # past their lifespan, but better than refusing every token
            raise

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= self.config.min_refresh_seconds

    def _fetch(self) -> list[PyJWK]:
        if self._failed_at is not None:
            wait = self.config.retry_after - (time.monotonic() - self._failed_at)
            if wait > 0:
                raise ProviderUnavailable(math.ceil(wait))
        try:
            client = self._client or self._discover()
            self._client = client
            keys = client.get_signing_keys(refresh=True)
        except (_FetchFailed, jwt.PyJWTError, ValueError) as error:
            # ValueError: a body that is not JSON; PyJWTError: not a key set, or no usable key in it.
            if self._failed_at is None:
                log.warning("identity provider unavailable: %s", _reason(error))
            self._failed_at = time.monotonic()
            raise ProviderUnavailable(self.config.retry_after) from error
        if self._failed_at is not None:
            log.info("identity provider reachable again")
        self._failed_at = None
        self._keys, self._fetched_at = keys, time.monotonic()
        self.fetches += 1
        log.info("identity provider's signing keys fetched", extra={"keys": len(keys)})
        return keys

    def _discover(self) -> PyJWKClient:
        url = f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=self.config.timeout, allow_redirects=False)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as error:
            raise _FetchFailed(f"discovery document: {_reason(error)}") from error
        if not isinstance(document, dict) or document.get("issuer") != self.config.issuer:
            # OpenID Connect Discovery 1.0, 4.3: the document must name the issuer it was asked of.
            raise _FetchFailed("discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise _FetchFailed("discovery document has no jwks_uri")
        return PyJWKClient(
            jwks_uri,
            cache_jwk_set=True,
            lifespan=self.config.cache_seconds,
            timeout=self.config.timeout,
            cooldown_duration=self.config.min_refresh_seconds,
        )


def _reason(error: Exception) -> str:
    """What went wrong, in one short line, for the log (URLs and status codes, never a token)."""
    text = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


_key_sets: dict[Config, KeySet] = {}
_key_sets_lock = threading.Lock()


def key_set(config: Config) -> KeySet:
    """This process's key set for the provider `config` names."""
    with _key_sets_lock:
        if config not in _key_sets:
            _key_sets.clear()  # settings changed (tests): the old provider's keys are no use
            _key_sets[config] = KeySet(config)
        return _key_sets[config]


def forget() -> None:
    """Forget every fetched key (tests; a new process starts this way)."""
    with _key_sets_lock:
        _key_sets.clear()


def verify(token: str, config: Config) -> dict[str, Any]:
    """The token's claims, once its signature, issuer, audience and times are checked."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected(*MALFORMED)
    keys = key_set(config)
    claims = keys.verified(token)
    if claims is None:
        kid, claims = _verify(token, config, keys)
        keys.remember(token, kid, claims)
    return claims


def _verify(token: str, config: Config, keys: KeySet) -> tuple[str, dict[str, Any]]:
    try:
        unverified = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise TokenRejected(*MALFORMED) from None
    header, payload = unverified["header"], unverified["payload"]
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise TokenRejected(*ALGORITHM)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected(*NO_KID)
    if payload.get("iss") != config.issuer:
        raise TokenRejected(*ISSUER)  # before asking the provider for keys it would not have
    key = keys.signing_key(kid)
    if key.algorithm_name != algorithm:
        raise TokenRejected(*KEY_MISMATCH)
    try:
        return kid, jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=config.audience,
            issuer=config.issuer,
            leeway=config.leeway,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected(*EXPIRED) from None
    except jwt.ImmatureSignatureError:
        raise TokenRejected(*NOT_YET_VALID) from None
    except jwt.InvalidAudienceError:
        raise TokenRejected(*AUDIENCE) from None
    except jwt.InvalidIssuerError:
        raise TokenRejected(*ISSUER) from None
    except jwt.InvalidSignatureError:
        raise TokenRejected(*SIGNATURE) from None
    except jwt.InvalidAlgorithmError:
        raise TokenRejected(*ALGORITHM) from None
    except jwt.MissingRequiredClaimError as error:
        raise missing_claim(error.claim) from None
    except jwt.InvalidIssuedAtError:
        raise missing_claim("iat") from None
    except jwt.exceptions.InvalidSubjectError:
        raise missing_claim("sub") from None
    except jwt.exceptions.InvalidJTIError:
        raise missing_claim("jti") from None
    except jwt.InvalidTokenError:
        raise TokenRejected(*MALFORMED) from None
