"""Bulk actions on the rows selected in the queue: each admin transition, soft delete and
restore. The service runs once per row, each row all or nothing, and a report says what happened
(the form a transition asks for is asked once, for all rows)."""

import uuid as uuid_lib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from communications_project.errors import DomainError, NotFound, TransitionNotAllowed

from .. import services
from ..models import Communication, Source
from .change import admin_transitions, error_text, refusal, transition_form_class
from .display import short_uuid

if TYPE_CHECKING:
    from . import CommunicationAdmin

# One bulk action runs the service once per row; past this many rows it is a job for a script.
BULK_LIMIT = 500
# A refusal report names this many rows, then says how many more.
REPORT_ROWS = 10


class BulkActionsMixin:
    """CommunicationAdmin's bulk actions: one per admin transition, plus soft delete and restore."""

    actions = ["soft_delete_selected", "restore_selected"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a hard delete; operators get the soft one
        if self.has_change_permission(request):
            for name, transition in admin_transitions().items():
                actions[f"transition_{name}"] = (
                    self._bulk_action(name),
                    f"transition_{name}",
                    format_lazy(_("{label}: selected communications"), label=transition.custom["label"]),
                )
        return actions

    @staticmethod
    def _bulk_action(name: str) -> Callable:
        def action(model_admin: "CommunicationAdmin", request: HttpRequest, queryset: QuerySet):
            return model_admin.bulk_transition(request, queryset, name)

        return action

    def _selected_rows(self, request: HttpRequest, queryset: QuerySet) -> list[Communication] | None:
        selected = queryset.select_related(None).order_by("-date_created", "uuid")
        rows = list(selected.only("uuid", "subject", "status", "kind", "date_deleted")[: BULK_LIMIT + 1])
        if len(rows) > BULK_LIMIT:
            self.message_user(
                request,
                gettext("Select at most %(limit)d communications for one action.") % {"limit": BULK_LIMIT},
                messages.ERROR,
            )
            return None
        return rows

    def bulk_transition(self, request: HttpRequest, queryset: QuerySet, name: str) -> HttpResponse | None:
        transition = admin_transitions()[name]
        rows = self._selected_rows(request, queryset)
        if rows is None:
            return None
        params: dict[str, Any] = {}
        form_class = transition_form_class(transition)
        if form_class is not None:
            form = form_class(request.POST if "apply" in request.POST else None)
            if not form.is_bound or not form.is_valid():
                return TemplateResponse(
                    request,
                    "admin/communications/communication/bulk_transition.html",
                    {
                        **self.admin_site.each_context(request),
                        "opts": self.opts,
                        "title": transition.custom["label"],
                        "label": transition.custom["label"],
                        "action": f"transition_{name}",
                        "form": form,
                        "rows": rows,
                        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                        "media": self.media + form.media,
                    },
                )
            params = form.cleaned_data

        def run(uuid):
            services.communication_transition(uuid=uuid, name=name, actor=request.user, source=Source.ADMIN, **params)

        label = transition.custom["label"]
        self._run_per_row(request, rows, label, run, refused_because=lambda row: refusal(name, row))
        return None

    def _run_per_row(
        self,
        request: HttpRequest,
        rows: Iterable[Communication],
        label: str,
        run: Callable[[uuid_lib.UUID], Any],
        refused_because: Callable[[Communication], str],
    ) -> None:
        changed, refused = 0, []
        for row in rows:
            try:
                run(row.pk)
            except TransitionNotAllowed:
                refused.append((row, refused_because(row)))
            except (DomainError, ValidationError) as error:
                refused.append((row, error_text(error)))
            else:
                changed += 1
        self.message_user(
            request,
            gettext("%(label)s: changed %(changed)d of %(total)d.")
            % {"label": label, "changed": changed, "total": changed + len(refused)},
            messages.SUCCESS if changed else messages.WARNING,
        )
        if refused:
            items = format_html_join(
                "",
                '<li><a href="{}">{}</a>: {}</li>',
                (
                    (
                        reverse("admin:communications_communication_change", args=[row.pk]),
                        row.subject or short_uuid(row.pk),
                        reason,
                    )
                    for row, reason in refused[:REPORT_ROWS]
                ),
            )
            more = len(refused) - REPORT_ROWS
            self.message_user(
                request,
                format_html(
                    '{}<ul class="refusals">{}</ul>{}',
                    gettext("Refused: %(count)d.") % {"count": len(refused)},
                    items,
                    gettext("And %(count)d more.") % {"count": more} if more > 0 else "",
                ),
                messages.ERROR,
            )

    @admin.action(description=_("Delete selected communications (restorable)"), permissions=["delete"])
    def soft_delete_selected(self, request, queryset):
        rows = self._selected_rows(request, queryset)
        if rows is None:
            return

        def run(uuid):
            services.communication_delete(uuid=uuid, actor=request.user, source=Source.ADMIN)

        self._run_per_row(request, rows, gettext("Deletion"), run, refused_because=lambda row: "")

    @admin.action(description=_("Restore selected deleted communications"), permissions=["delete"])
    def restore_selected(self, request, queryset):
        rows = self._selected_rows(request, queryset)
        if rows is None:
            return

        def run(uuid):
            try:
                services.communication_restore(uuid=uuid, actor=request.user, source=Source.ADMIN)
            except NotFound:
                raise DomainError(gettext("It is not deleted."))

        self._run_per_row(request, rows, gettext("Restoration"), run, refused_because=lambda row: "")
