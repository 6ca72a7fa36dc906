"""Settings, read from the environment in this one file (see docs/CONFIGURATION.md).

Development needs nothing set: SQLite next to manage.py, DEBUG off unless asked for.
Production fails loudly on a missing secret instead of running with a default one.
"""

import datetime as dt
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on-0123456789"
# Rotation: the new key in SECRET_KEY, the old one here until sessions signed with it have expired.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "django_fsm",
    "axes",
    "communications_project",
    "credentials",
    "dicts",
    "communications",
    "id_translations",
    "telephony",
]

MIDDLEWARE = [
    "communications_project.middleware.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "communications_project.middleware.APILanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "communications_project.db.ReadYourWritesMiddleware",
    "communications_project.api.MethodNotAllowedMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "communications_project.urls"
WSGI_APPLICATION = "communications_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server (not just a refusing one) must not hold a worker for the OS's minutes.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
# While the database is unreachable every request answers 503 database_unavailable with this
# Retry-After (seconds).
DATABASE_RETRY_AFTER = env.int("DATABASE_RETRY_AFTER", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A PostgreSQL streaming replica for reads (SPEC §9, docs/SCALING.md); communications_project/db.py
# decides which reads go there. Unset: everything on the primary, and nothing else is needed.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")  # where each user's last write position is kept
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=5.0)
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=2.0)  # per process
if DATABASE_REPLICA_URL:
    if not REDIS_URL:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs REDIS_URL (read-your-writes positions live there).")
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    if not all("postgresql" in DATABASES[alias]["ENGINE"] for alias in ("default", "replica")):
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs PostgreSQL for both DATABASE_URL and the replica.")
    # Seconds; an unreachable replica is skipped for the primary, so it must not hold a request long.
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # a test run has no replica of its test database
DATABASE_ROUTERS = ["communications_project.db.ReplicaRouter"]

# Admin login throttling (django-axes, docs/SECURITY.md): after AXES_FAILURE_LIMIT wrong passwords
# for one username from one address, that pair is refused (429) for the cool-off, even with the
# right password. Another address or another username is not affected.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "communications_project.middleware.client_ip"
# How many proxies in front of gunicorn append to X-Forwarded-For (0: trust only REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Moscow"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Production hardening. Each can be turned off from the environment (e.g. behind a TLS proxy
# that already redirects), but the defaults are the safe ones whenever DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "credentials.authentication.ApiKeyAuthentication",
        "credentials.authentication.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["communications_project.permissions.ModelPermissions"],
    "DEFAULT_PARSER_CLASSES": ["communications_project.parsers.ORJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["communications_project.renderers.ORJSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "communications_project.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

DRF_STANDARDIZED_ERRORS = {
    # One documented 400 body for every operation: validation also happens in the services, so a
    # per-field enumeration generated from the serializers would be incomplete.
    "ERROR_SCHEMAS": {
        "400": "communications_project.api.ErrorResponseSerializer",
        "401": "credentials.schema.ErrorResponse401Serializer",  # with why a key or a token was refused
    },
    "EXCEPTION_HANDLER_CLASS": "communications_project.errors.ErrorHandler",
    "EXCEPTION_FORMATTER_CLASS": "communications_project.errors.ErrorFormatter",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    # Added to every operation by the schema generator; 409/412/422/5xx are declared per operation.
    "ALLOWED_ERROR_STATUS_CODES": ["400", "401", "403", "404", "405", "406", "415", "500"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Communications service API",
    "DESCRIPTION": "The system of record for every interaction with a client.",
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A PATCH body has the fields its serializer requires (a transition's `fail_reason`), not all optional.
    "COMPONENT_SPLIT_PATCH": False,
    # Responses list the fields they may carry; `view=short` and `include=` choose among them.
    "COMPONENT_NO_READ_ONLY_REQUIRED": True,
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "communications.models.Status",
        "AttemptOutcomeEnum": "communications.models.AttemptOutcome",
        "TransitionNameEnum": "communications.api.serializers.TRANSITION_NAMES",
        "ValidationErrorEnum": "drf_standardized_errors.openapi_serializers.ValidationErrorEnum.choices",
        "ClientErrorEnum": "drf_standardized_errors.openapi_serializers.ClientErrorEnum.choices",
        "ServerErrorEnum": "drf_standardized_errors.openapi_serializers.ServerErrorEnum.choices",
    },
    # The schema reads the methods dictionary: `make schema` generates and validates it on a migrated
    # database; `check --deploy` runs before migrations, where it could not.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "communications_project.schema.require_bodies",
        "communications_project.schema.add_links",
        "communications_project.schema.add_database_unavailable",
        "communications_project.schema.add_uri_too_long",
        "communications_project.schema.uuid_path_parameters",
    ],
}

# Bearer tokens from the company's identity provider (docs/SECURITY.md, credentials/oidc.py).
# No OIDC_ISSUER: only API keys and admin sessions are accepted.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="")
OIDC_AUDIENCE = env.str("OIDC_AUDIENCE", default="")
# The claim users are matched by and named after: `sub` (stable) or `preferred_username` (readable).
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="sub")
# The claim with the employee's groups or roles (a dotted path for nested ones: realm_access.roles),
# and which of them grant which Django group: `crm-operators=Operators,crm-readers=Readers`. Only
# mapped ones grant anything; the token decides membership of the mapped groups on every request.
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_GROUPS_MAP = env.dict("OIDC_GROUPS_MAP", default={})
if any(not name.strip() or "\x00" in name for name in [*OIDC_GROUPS_MAP, *OIDC_GROUPS_MAP.values()]):
    raise ImproperlyConfigured("OIDC_GROUPS_MAP: provider-group=Django group, comma-separated, no empty names.")
# The claim with the UUIDs of the employee's dealerships (empty: none read).
OIDC_DEALERS_CLAIM = env.str("OIDC_DEALERS_CLAIM", default="dealer_uuids")
OIDC_LEEWAY_SECONDS = env.int("OIDC_LEEWAY_SECONDS", default=30)
OIDC_JWKS_CACHE_SECONDS = env.float("OIDC_JWKS_CACHE_SECONDS", default=600.0)
OIDC_JWKS_MIN_REFRESH_SECONDS = env.float("OIDC_JWKS_MIN_REFRESH_SECONDS", default=10.0)
OIDC_HTTP_TIMEOUT = env.float("OIDC_HTTP_TIMEOUT", default=3.0)
OIDC_RETRY_AFTER = env.int("OIDC_RETRY_AFTER", default=10)
if OIDC_ISSUER:
    _issuer = urlsplit(OIDC_ISSUER)
    if _issuer.scheme != "https" and not (DEBUG or _issuer.hostname in ("127.0.0.1", "localhost", "::1")):
        raise ImproperlyConfigured("OIDC_ISSUER must be an https:// URL.")
    if not OIDC_AUDIENCE:
        raise ImproperlyConfigured("OIDC_ISSUER needs OIDC_AUDIENCE: the audience (aud) tokens for this service carry.")
    if not 0 <= OIDC_LEEWAY_SECONDS <= 300:
        raise ImproperlyConfigured("OIDC_LEEWAY_SECONDS must be between 0 and 300.")
    if min(OIDC_JWKS_CACHE_SECONDS, OIDC_JWKS_MIN_REFRESH_SECONDS, OIDC_HTTP_TIMEOUT, OIDC_RETRY_AFTER) <= 0:
        raise ImproperlyConfigured("OIDC_JWKS_*, OIDC_HTTP_TIMEOUT and OIDC_RETRY_AFTER must be positive.")

# How long each process keeps the methods dictionary (dicts/selectors.py); admin edits show within it.
DICTS_CACHE_SECONDS = env.float("DICTS_CACHE_SECONDS", default=30.0)

# How long an Idempotency-Key is remembered (SPEC §6.2).
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)

# The attempt policy for planned communications (docs/CONFIGURATION.md, communications/policy.py):
# after an unsuccessful attempt, while the communication has fewer than ATTEMPTS_MAX attempts, it is
# re-planned ATTEMPTS_RETRY_MINUTES after the attempt; the attempt that reaches the limit fails it.
# Per method: ATTEMPTS_MAX_BY_METHOD=call=3,visit=0 (0: the policy leaves that method alone).
ATTEMPTS_POLICY = env.bool("ATTEMPTS_POLICY", default=True)
ATTEMPTS_MAX = env.int("ATTEMPTS_MAX", default=3)
ATTEMPTS_RETRY_MINUTES = env.int("ATTEMPTS_RETRY_MINUTES", default=120)


def _per_method(name: str) -> dict[str, int]:
    try:
        values = env.dict(name, cast={"value": int}, default={})
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: method=number pairs, comma-separated ({error}).") from error
    for method, value in values.items():
        if not method or value < 0:
            raise ImproperlyConfigured(f"{name}: {method!r}={value} is not a method and a number of at least 0.")
    return values


ATTEMPTS_MAX_BY_METHOD = _per_method("ATTEMPTS_MAX_BY_METHOD")
ATTEMPTS_RETRY_MINUTES_BY_METHOD = _per_method("ATTEMPTS_RETRY_MINUTES_BY_METHOD")
if ATTEMPTS_MAX < 1:
    raise ImproperlyConfigured("ATTEMPTS_MAX must be at least 1 (ATTEMPTS_POLICY=false switches the policy off).")
if ATTEMPTS_RETRY_MINUTES < 0:
    raise ImproperlyConfigured("ATTEMPTS_RETRY_MINUTES must not be negative.")

# Lead response (docs/REPORTS.md): a lead's first contact within this many minutes meets the SLA.
LEAD_RESPONSE_SLA_MINUTES = env.int("LEAD_RESPONSE_SLA_MINUTES", default=15)
if LEAD_RESPONSE_SLA_MINUTES < 1:
    raise ImproperlyConfigured("LEAD_RESPONSE_SLA_MINUTES must be at least 1.")


def _working_hours(value: str) -> tuple[dt.time, dt.time] | None:
    """`09:00-21:00`: response times count only minutes inside these hours (every day, Moscow time)."""
    if not value:
        return None
    try:
        opens, closes = (dt.time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError as error:
        raise ImproperlyConfigured(f"LEAD_RESPONSE_WORKING_HOURS: HH:MM-HH:MM, e.g. 09:00-21:00 ({error}).")
    if closes <= opens:
        raise ImproperlyConfigured("LEAD_RESPONSE_WORKING_HOURS: the closing time must be after the opening time.")
    return opens, closes


LEAD_RESPONSE_WORKING_HOURS = _working_hours(env.str("LEAD_RESPONSE_WORKING_HOURS", default=""))

# Telephony (SPEC §5, docs/TELEPHONY.md). No ASTERISK_ARI_URL: click-to-call answers 503
# telephony_not_configured.
ASTERISK_ARI_URL = env.str("ASTERISK_ARI_URL", default="").rstrip("/")
ASTERISK_ARI_USERNAME = env.str("ASTERISK_ARI_USERNAME", default="")
ASTERISK_ARI_PASSWORD = env.str("ASTERISK_ARI_PASSWORD", default="")
ASTERISK_CONTEXT = env.str("ASTERISK_CONTEXT", default="from-crm")
ASTERISK_ENDPOINT_TEMPLATE = env.str("ASTERISK_ENDPOINT_TEMPLATE", default="PJSIP/{extension}")
if "{extension}" not in ASTERISK_ENDPOINT_TEMPLATE:
    raise ImproperlyConfigured("ASTERISK_ENDPOINT_TEMPLATE must contain {extension}, e.g. PJSIP/{extension}.")
ASTERISK_CALLER_ID = env.str("ASTERISK_CALLER_ID", default="CRM")
ASTERISK_CONNECT_TIMEOUT = env.float("ASTERISK_CONNECT_TIMEOUT", default=2.0)
ASTERISK_READ_TIMEOUT = env.float("ASTERISK_READ_TIMEOUT", default=5.0)
ASTERISK_RING_TIMEOUT = env.int("ASTERISK_RING_TIMEOUT", default=30)  # seconds the agent's phone rings
# After this many consecutive failures to reach Asterisk, answer 503 at once for the cool-down.
ASTERISK_BREAKER_FAILURES = env.int("ASTERISK_BREAKER_FAILURES", default=3)
ASTERISK_BREAKER_COOLDOWN = env.float("ASTERISK_BREAKER_COOLDOWN", default=30.0)
TELEPHONY_EVENTS_SECRET = env.str("TELEPHONY_EVENTS_SECRET", default="")
# The ARI events listener (manage.py telephony_events): the ARI application its WebSocket
# subscribes as, and the WebSocket URL when it is not ASTERISK_ARI_URL's (ws(s)://…/ari/events).
ASTERISK_ARI_APP = env.str("ASTERISK_ARI_APP", default="crm")
ASTERISK_ARI_EVENTS_URL = env.str("ASTERISK_ARI_EVENTS_URL", default="").rstrip("/")

# The change feed (docs/EVENTS.md). Events are kept EVENTS_RETENTION_DAYS (manage.py purge_events);
# with EVENTS_BROKER_URL set, `manage.py publish_events` relays them to RabbitMQ's EVENTS_EXCHANGE.
EVENTS_RETENTION_DAYS = env.int("EVENTS_RETENTION_DAYS", default=30)
if EVENTS_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("EVENTS_RETENTION_DAYS must be at least 1.")
EVENTS_SOURCE = env.str("EVENTS_SOURCE", default="/communications")  # CloudEvents `source`
EVENTS_BROKER_URL = env.str("EVENTS_BROKER_URL", default="")  # amqp://user:password@host:5672/vhost
EVENTS_EXCHANGE = env.str("EVENTS_EXCHANGE", default="communications")
EVENTS_RELAY_BATCH = env.int("EVENTS_RELAY_BATCH", default=500)  # events read and confirmed per round
EVENTS_RELAY_POLL_SECONDS = env.float("EVENTS_RELAY_POLL_SECONDS", default=0.5)  # idle wait for new events
if EVENTS_BROKER_URL and not EVENTS_BROKER_URL.startswith(("amqp://", "amqps://")):
    raise ImproperlyConfigured("EVENTS_BROKER_URL must be an amqp:// or amqps:// URL.")

# Prometheus metrics at /metrics (docs/OPERATIONS.md): readable with `Authorization: Bearer
# <METRICS_TOKEN>` or from an address in METRICS_ALLOWED_NETWORKS; with neither set, 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
try:
    METRICS_ALLOWED_NETWORKS = [
        ipaddress.ip_network(net, strict=False) for net in env.list("METRICS_ALLOWED_NETWORKS", default=[])
    ]
except ValueError as error:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {error}") from error

# One JSON object per line on stderr (LOG_FORMAT=plain for a human at a terminal). Every line of a
# request carries its request_id; phone numbers are masked and secret-named fields dropped.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "communications_project.observability.RequestContextFilter"},
    },
    "formatters": {
        "json": {"()": "communications_project.observability.JsonLogFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
            "level": env.str("LOG_LEVEL", default="INFO"),
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's own console handler (DEBUG only) would print every django line a second time.
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "pika": {"level": "WARNING"},  # a line per socket step otherwise; the relay logs its own states
    },
}
