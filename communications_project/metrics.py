"""`/metrics` for Prometheus: open only to METRICS_TOKEN (bearer) or METRICS_ALLOWED_NETWORKS."""

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from .errors import _plain_error, not_found
from .middleware import client_ip

# Collectors that read their values at scrape time (from the database, say), once per scrape
# whichever worker answers: apps register theirs here (`register_scrape_collector`).
SCRAPE_TIME = CollectorRegistry(auto_describe=False)


def register_scrape_collector(collector) -> None:
    SCRAPE_TIME.register(collector)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    token: str = settings.METRICS_TOKEN
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return not_found(request)  # not configured: as if there were no such page
    if networks:
        try:
            address = ipaddress.ip_address(client_ip(request))
        except ValueError:
            address = None
        if address is not None and any(address in network for network in networks):
            return None
    if token:
        header = request.headers.get("Authorization", "")
        if not header:
            response = _plain_error(401, "client_error", "not_authenticated", "A bearer token is required.")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
    return _plain_error(403, "client_error", "permission_denied", "Not allowed to read the metrics.")


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # every gunicorn worker's samples, added up
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry) + generate_latest(SCRAPE_TIME), content_type=CONTENT_TYPE_LATEST)
