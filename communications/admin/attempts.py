"""Attempts: the inline and the "Record an attempt" form on a communication's page, and the list
of attempts the dashboard's counts link to."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from communications_project.errors import DomainError

from .. import services
from ..forms import AttemptForm
from ..models import Attempt, AttemptOutcome, Communication, Source
from .change import error_text, keep_filters
from .display import short_datetime, short_uuid
from .filters import AttemptDealerFilter
from .history import ReadOnlyInline
from .queue import CappedCountPaginator


def outcome_badge(outcome: str) -> SafeString:
    return format_html('<span class="badge attempt-{}">{}</span>', outcome, AttemptOutcome(outcome).label)


class AttemptInline(ReadOnlyInline):
    """The tries to reach the client, newest first (calls included: each ended call is one)."""

    model = Attempt
    fields = ("date_display", "method", "outcome_display", "source", "created_by", "comment", "call_id")
    ordering = ("-date", "-date_created")
    select_related = ("method", "created_by")
    classes = ("attempts",)

    def has_view_permission(self, request, obj=None):
        # Part of the communication: who may see it sees its attempts.
        return request.user.has_perm("communications.view_communication") or super().has_view_permission(request, obj)

    @admin.display(description=_("date"))
    def date_display(self, attempt: Attempt) -> str:
        return short_datetime(attempt.date)

    @admin.display(description=_("outcome"))
    def outcome_display(self, attempt: Attempt) -> SafeString:
        return outcome_badge(attempt.outcome)


class RecordAttemptMixin:
    """CommunicationAdmin's attempts on the change page: the inline, the "Record an attempt" form
    and the view it posts to."""

    def get_inlines(self, request, obj):
        return [AttemptInline, *super().get_inlines(request, obj)]

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/attempt/",
                self.admin_site.admin_view(self.record_attempt_view),
                name="communications_communication_attempt",
            )
        ]
        return [*own, *super().get_urls()]

    def page_context(self, request: HttpRequest, obj: Communication) -> dict:
        return {**super().page_context(request, obj), "attempt": self.attempt_form(request, obj)}

    def attempt_form(self, request: HttpRequest, obj: Communication) -> dict | None:
        if obj.is_deleted or obj.is_final or not self.has_change_permission(request, obj):
            return None
        url = reverse("admin:communications_communication_attempt", args=[obj.pk])
        return {"form": AttemptForm(communication=obj), "url": keep_filters(request, url)}

    def record_attempt_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        change_url = keep_filters(request, reverse("admin:communications_communication_change", args=[obj.pk]))
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        form = AttemptForm(request.POST, communication=obj)
        if not form.is_valid():
            errors = "; ".join(f"{form.fields[name].label}: {' '.join(e)}" for name, e in form.errors.items())
            self.message_user(request, errors, messages.ERROR)
            return HttpResponseRedirect(change_url)
        try:
            services.attempt_record(uuid=obj.pk, actor=request.user, source=Source.ADMIN, **form.cleaned_data)
        except (DomainError, ValidationError) as error:
            self.message_user(request, error_text(error), messages.ERROR)
        else:
            after = Communication.objects.get(pk=obj.pk)
            self.message_user(
                request,
                format_html(
                    _("Attempt recorded: {outcome}. Attempts: {count}."),
                    outcome=outcome_badge(form.cleaned_data["outcome"]),
                    count=after.attempts_count,
                ),
                messages.SUCCESS,
            )
        return HttpResponseRedirect(change_url)


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    """Every attempt, newest first; the dashboard's "attempts by outcome" land here. Read-only."""

    list_display = ("date_display", "communication_display", "method", "outcome_display", "source", "created_by")
    list_filter = ("outcome", "source", "date", AttemptDealerFilter)
    list_select_related = ("method", "created_by", "communication")
    ordering = ("-date",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    paginator = CappedCountPaginator

    @admin.display(description=_("date"), ordering="date")
    def date_display(self, attempt: Attempt) -> str:
        return short_datetime(attempt.date)

    @admin.display(description=_("communication"))
    def communication_display(self, attempt: Attempt) -> SafeString:
        url = reverse("admin:communications_communication_change", args=[attempt.communication_id])
        subject = attempt.communication.subject or short_uuid(attempt.communication_id)
        return format_html('<a href="{}">{}</a>', url, subject)

    @admin.display(description=_("outcome"))
    def outcome_display(self, attempt: Attempt) -> SafeString:
        return outcome_badge(attempt.outcome)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(communication__date_deleted__isnull=True)

    def has_add_permission(self, request):
        return False  # recorded from the communication's page or the API, through the service

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
