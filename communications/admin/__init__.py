"""Operators' screens: a queue to work through, one communication's page, bulk actions.

Every write goes through communications.services, like the API's. The model's transition table
(`Communication.transitions()`, each transition's `custom`) decides which buttons and bulk actions
exist, their labels and the form each asks for. Higher apps (telephony) add their inlines, buttons
and URLs by registering a `CommunicationAdminExtension`; this package never imports them.

One module per screen, put together here into the one registered `CommunicationAdmin`:

    queue.py       the list: columns, filters, search, the queue's order, the capped paginator
    change.py      one communication's page: its form, transition buttons and their views
    actions.py     bulk actions on selected rows, and the report of what they did
    attempts.py    attempts: the inline and the "Record an attempt" form on the page, the attempts list
    dashboard.py   the supervisors' dashboard (lead response, waiting leads, employees' queues, attempts)
    filters.py     the list filters the dashboard links to (dealership, employee, leads by contact)
    history.py     the history inline, a history row in words, the read-only inline base
    extensions.py  the extension point higher apps register with
    display.py     badges and short formats the screens share

Other apps import from here (`from communications.admin import ...`), never from a screen's module.
"""

from django.contrib import admin

from ..models import Communication
from .actions import BulkActionsMixin
from .attempts import RecordAttemptMixin
from .change import ChangePageMixin, keep_filters
from .dashboard import DashboardMixin
from .display import short_datetime, short_uuid, status_badge
from .extensions import CommunicationAdminExtension, extensions, register_extension
from .history import ReadOnlyInline
from .queue import QueueMixin

__all__ = [
    "CommunicationAdmin",
    "CommunicationAdminExtension",
    "ReadOnlyInline",
    "extensions",
    "keep_filters",
    "register_extension",
    "short_datetime",
    "short_uuid",
    "status_badge",
]

# A work queue needs the width more than a menu of every model.
admin.site.enable_nav_sidebar = False


@admin.register(Communication)
class CommunicationAdmin(
    DashboardMixin, RecordAttemptMixin, QueueMixin, ChangePageMixin, BulkActionsMixin, admin.ModelAdmin
):
    """The queue (list), the change page, its attempts, the bulk actions and the dashboard of one
    model, each in its module."""
