"""Probes for the load balancer and the orchestrator; open, no authentication."""

import logging

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from .db import replica_report

logger = logging.getLogger("communications_project.health")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving; says nothing of the database."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: the database answers and every migration is applied."""
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:  # any database failure means "not ready", never a 500
        # A short reason an operator can act on; psycopg's message names host and port, never
        # the password, but it stays in the log line, not in an open probe's answer.
        logger.warning("not ready: database unreachable", extra={"error": type(error).__name__, "reason": str(error)})
        reason = f"database unreachable ({type(error).__name__})"
        return JsonResponse({"status": "unavailable", "reason": reason}, status=503)
    if pending:
        return JsonResponse({"status": "unavailable", "reason": f"{len(pending)} migrations not applied"}, status=503)
    return JsonResponse({"status": "ok", **replica_report()})  # the replica's state never fails readiness
