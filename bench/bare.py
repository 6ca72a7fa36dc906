"""Bare Django views: the floor the API's reads are measured against (issue 10).

Each does what a hand-written view would: the API key checked in one query (its hash looked up,
not revoked, not expired, its user active), `.values()` of the same rows and columns the API
answers with, `JsonResponse`. No DRF, no serializers, no permissions beyond that.
"""

import json

from django.db.models import OuterRef, Subquery
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from communications.models import Communication
from credentials.models import ApiKey, hash_key
from dicts.models import CommunicationMethod
from id_translations.models import IdTranslation

SHORT = [
    "uuid",
    "method_id",
    "kind",
    "direction",
    "status",
    "client_uuid",
    "employee_uuid",
    "dealer_uuid",
    "subject",
    "date_planned_start",
    "date_start",
    "date_finish",
    "date_created",
    "date_updated",
]
FULL = [
    *SHORT,
    "comment",
    "result",
    "details",
    "date_planned_finish",
    "cancel_reason",
    "fail_reason",
    "created_by__username",
    "updated_by__username",
    "version",
    "oracle_id",
]


def _authorized(request) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    key = header[6:] if header.startswith("Token ") else ""
    keys = ApiKey.objects.filter(key_hash=hash_key(key), date_revoked__isnull=True, user__is_active=True)
    return keys.exclude(date_expires__lte=timezone.now()).exists()


def _rows(columns: list[str]):
    rows = Communication.objects.filter(date_deleted__isnull=True)
    if "oracle_id" in columns:
        oracle_id = IdTranslation.objects.filter(flora_uuid=OuterRef("uuid")).values("oracle_id")[:1]
        rows = rows.annotate(oracle_id=Subquery(oracle_id))
    return rows.values(*columns)


def get_one(request, uuid):
    if not _authorized(request):
        return HttpResponse(status=401)
    row = _rows(FULL).filter(uuid=uuid).first()
    if row is None:
        return HttpResponse(status=404)
    return JsonResponse(row)


def list_page(request):
    if not _authorized(request):
        return HttpResponse(status=401)
    rows = _rows(SHORT).order_by("-date_created", "-uuid")
    if "status" in request.GET:
        rows = rows.filter(status=request.GET["status"])
    if "client_uuid" in request.GET:
        rows = rows.filter(client_uuid=request.GET["client_uuid"])
    return JsonResponse({"results": list(rows[:50])})


@csrf_exempt  # token-authenticated, like the API's POSTs
def collection(request):
    if not _authorized(request):
        return HttpResponse(status=401)
    body = json.loads(request.body)
    columns = FULL if body.get("view") == "full" else SHORT
    return JsonResponse({"results": list(_rows(columns).filter(uuid__in=body["uuids"]))})


def methods(request):
    if not _authorized(request):
        return HttpResponse(status=401)
    return JsonResponse(list(CommunicationMethod.objects.values("code", "name", "is_active", "sort_order")), safe=False)
