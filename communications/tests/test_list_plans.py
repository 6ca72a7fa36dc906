"""The list's pages come from an index in the list's order, whatever the filter (issue 10: flat latency).

With sequential scans off, the planner shows whether an index can give a page: a plan that still
sorts, or scans the table, would read every matching row at a million rows.
"""

import uuid

import pytest
from django.db import connection

from communications.api.rows import VIEWS
from communications.selectors import communication_rows

from .factories import CommunicationFactory

pytestmark = pytest.mark.django_db

SPREAD = """
    INSERT INTO communications_communication (uuid, method_id, kind, direction, status, client_uuid, employee_uuid,
        dealer_uuid, subject, comment, result, details, cancel_reason, fail_reason, date_created, date_updated, version)
    SELECT gen_random_uuid(), (ARRAY['call', 'visit', 'sms', 'email', 'site_request', 'messenger'])[1 + g % 6],
        'actual', 'inbound', (ARRAY['in_work', 'failed'])[1 + g % 2], gen_random_uuid(), gen_random_uuid(),
        gen_random_uuid(), '', '', '', '{}', '', '', now() - g * interval '1 minute', now(), 1
    FROM generate_series(1, 5000) g
"""

FILTERS = [
    {},
    {"status": "in_work"},
    {"method_id": "call"},
    {"client_uuid": uuid.UUID(int=1)},
    {"employee_uuid": uuid.UUID(int=2)},
    {"dealer_uuid": uuid.UUID(int=3)},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
def test_every_filtered_page_is_an_index_range_in_list_order(filters):
    CommunicationFactory.create_batch(3)
    with connection.cursor() as cursor:  # enough rows, and their statistics, for the planner to plan at scale
        cursor.execute(SPREAD)
        cursor.execute("ANALYZE communications_communication")
    page = communication_rows(VIEWS["short"].columns).filter(**filters).order_by("-date_created", "-uuid")[:51]
    sql, params = page.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan Backward" in plan, plan
    assert "Sort" not in plan, plan
