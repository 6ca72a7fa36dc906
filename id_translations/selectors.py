import uuid as uuid_lib

from django.db.models import Q

from .models import IdTranslation


def translations_find(*, flora_uuids: list[uuid_lib.UUID], oracle_ids: list[int]) -> list[tuple[uuid_lib.UUID, int]]:
    """Pairs matching any of the given values of either side, one query."""
    return list(
        IdTranslation.objects.filter(Q(flora_uuid__in=flora_uuids) | Q(oracle_id__in=oracle_ids))
        .order_by("oracle_id")
        .values_list("flora_uuid", "oracle_id")
    )
