"""What happened to a communication: the history inline on its page, each row's changes in
words, and the read-only inline higher apps base theirs on (telephony's calls)."""

from typing import Any

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from dicts.models import CommunicationMethod

from ..models import Communication, CommunicationHistory, HistoryAction
from .display import short_datetime, status_badge


class ReadOnlyInline(admin.TabularInline):
    """What happened to the communication: shown as a plain table, never edited here.

    `fields` are the columns, in order; a field of the model or a method of the inline (a method
    returns the cell's HTML). Adding a column is adding its name.
    """

    extra = 0
    can_delete = False
    template = "admin/edit_inline/read_only_tabular.html"
    select_related: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.select_related)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class HistoryFormatter:
    """Turns a history row's `changes` ({"field": [old, new]}) into what an operator reads."""

    def __init__(self):
        self._methods: dict[str, str] | None = None

    def method_name(self, code: str) -> str:
        if self._methods is None:  # one query per page, however many rows mention a method
            self._methods = dict(CommunicationMethod.objects.values_list("code", "name"))
        return self._methods.get(code, code)

    def label(self, name: str) -> str:
        try:
            return capfirst(Communication._meta.get_field(name.removesuffix("_id")).verbose_name)
        except FieldDoesNotExist:
            return name

    def value(self, name: str, value: Any) -> str:
        if value in (None, "", {}, []):
            return "—"
        if name == "method_id":
            return self.method_name(value)
        try:
            field = Communication._meta.get_field(name.removesuffix("_id"))
        except FieldDoesNotExist:
            return str(value)
        if field.choices:
            return str(dict(field.flatchoices).get(value, value))
        is_date = isinstance(field, models.DateTimeField)
        if is_date and isinstance(value, str) and (parsed := parse_datetime(value)):
            return short_datetime(parsed)
        if isinstance(value, dict):
            return ", ".join(f"{key}: {item}" for key, item in value.items())
        return str(value)

    def changes(self, entry: CommunicationHistory) -> SafeString:
        rows = [
            (self.label(name), self.value(name, old), self.value(name, new))
            for name, (old, new) in entry.changes.items()
            if name != "status"  # the event column says it
        ]
        if entry.action == HistoryAction.CREATE:
            return format_html_join("", '<div class="change"><b>{}</b>: {}</div>', ((k, new) for k, _o, new in rows))
        return format_html_join("", '<div class="change"><b>{}</b>: {} <span class="arrow">→</span> {}</div>', rows)


class CommunicationHistoryInline(ReadOnlyInline):
    """Newest first, in words: what happened, who did it, from where, what changed."""

    model = CommunicationHistory
    fields = ("date_display", "event", "actor", "source", "changes_display")
    ordering = ("-date", "-id")
    select_related = ("actor",)
    classes = ("history",)

    def get_formset(self, request, obj=None, **kwargs):
        self.formatter = HistoryFormatter()  # per request: the method names it caches
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description=_("date"))
    def date_display(self, entry: CommunicationHistory) -> str:
        return short_datetime(entry.date)

    @admin.display(description=_("event"))
    def event(self, entry: CommunicationHistory) -> SafeString:
        if entry.action == HistoryAction.TRANSITION:
            return format_html(
                '{} <span class="arrow">→</span> {}', status_badge(entry.status_from), status_badge(entry.status_to)
            )
        if entry.action == HistoryAction.CREATE and entry.status_to:
            return format_html("{}: {}", entry.get_action_display(), status_badge(entry.status_to))
        return format_html("{}", entry.get_action_display())

    @admin.display(description=_("changes"))
    def changes_display(self, entry: CommunicationHistory) -> SafeString:
        return self.formatter.changes(entry)
