"""The production settings plus what only the benchmarks need (bench/urls.py, bench/legacy_token.py).

Only the benchmark scripts use this module; the product's URLs never include the baselines, and
the product no longer installs rest_framework.authtoken.

- the bare baseline views (bench/bare.py);
- main's DRF token authentication before issue 21 (`Authorization: DRFToken <key>`), the
  baseline API keys and bearer tokens are measured against.
"""

from communications_project.settings import *  # noqa: F403
from communications_project.settings import INSTALLED_APPS, REST_FRAMEWORK

ROOT_URLCONF = "bench.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "bench.legacy_token.TokenAuthentication",  # first: the baseline pays for no other class
        *REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
    ],
}
