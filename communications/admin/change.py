"""One communication's page: its form, the transition buttons the state machine allows now, the
URLs they post to, restoring a deleted row, and "next in the queue"."""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.module_loading import import_string
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_fsm import Transition

from communications_project.errors import DomainError, NotFound, TransitionNotAllowed

from .. import services
from ..details import validate_details
from ..diagram import localized_svg
from ..forms import TransitionForm
from ..models import Communication, Source
from .display import is_overdue, status_badge
from .extensions import extensions
from .history import CommunicationHistoryInline
from .queue import CommunicationChangeList, QueueFilter


def keep_filters(request: HttpRequest, url: str) -> str:
    """`url` carrying the list's filters the page was opened from, so "back" returns to the queue."""
    preserved = request.GET.get("_changelist_filters")
    return f"{url}?{urlencode({'_changelist_filters': preserved})}" if preserved else url


def transition_form_class(transition: Transition) -> type[TransitionForm] | None:
    form = transition.custom.get("form")
    return import_string(form) if form else None


def admin_transitions() -> dict[str, Transition]:
    return {name: t for name, t in Communication.transitions().items() if t.custom.get("admin")}


def refusal(name: str, current: Communication) -> str:
    """The state machine's "no", in the operator's words."""
    return gettext("“%(action)s” is not possible: the communication is %(status)s now (%(kind)s).") % {
        "action": Communication.transitions()[name].custom["label"],
        "status": current.get_status_display().lower(),
        "kind": current.get_kind_display().lower(),
    }


def error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    if isinstance(error, NotFound):
        return gettext("The communication is deleted.")
    return str(getattr(error, "detail", error))


class CommunicationAdminForm(forms.ModelForm):
    """Runs the service's own checks, so a refusal shows on the form instead of after saving."""

    class Meta:
        model = Communication
        fields = services.EDITABLE_FIELDS
        widgets = {
            **{
                name: forms.TextInput(attrs={"class": "vUUIDField", "size": 40})
                for name in ("client_uuid", "employee_uuid", "dealer_uuid")
            },
            "comment": forms.Textarea(attrs={"rows": 3, "cols": 80}),
            "result": forms.Textarea(attrs={"rows": 3, "cols": 80}),
            "details": forms.Textarea(attrs={"rows": 3, "cols": 80}),
        }

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        if instance.is_final and self.changed_data:
            raise ValidationError(_("A final communication cannot be changed."), code="final")
        if "details" in self.changed_data and "details" in cleaned:
            try:
                cleaned["details"] = validate_details(instance.method_id, cleaned["details"])
            except ValidationError as error:
                self.add_error("details", [f"{key}: {' '.join(msgs)}" for key, msgs in error.message_dict.items()])
        if instance.is_planned() and "date_planned_start" in cleaned:
            services.check_planned_dates(
                instance.kind, cleaned.get("date_planned_start"), cleaned.get("date_planned_finish")
            )
        return cleaned


class ChangePageMixin:
    """CommunicationAdmin's change page: its fields, buttons, their views, and what saving does."""

    form = CommunicationAdminForm
    fieldsets = (
        (None, {"fields": ("subject", "method", "kind", "direction", "status", "oracle_id_display")}),
        (_("Content"), {"fields": ("comment", "result", "details")}),
        (
            _("Dates"),
            {"fields": ("date_planned_start", "date_planned_finish", "date_start", "date_finish")},
        ),
        (_("Participants"), {"fields": ("client_uuid", "employee_uuid", "dealer_uuid")}),
        (_("Outcome"), {"fields": ("cancel_reason", "fail_reason")}),
        (_("Attempts"), {"fields": ("attempts_count", "last_attempt_at", "last_attempt_outcome")}),
        (
            _("Audit"),
            {
                "classes": ("collapse",),
                "fields": (
                    "uuid",
                    "version",
                    "date_created",
                    "created_by",
                    "date_updated",
                    "updated_by",
                    "date_deleted",
                ),
            },
        ),
    )
    # Set by the state machine or by the service, never typed in.
    always_read_only = (
        "uuid",
        "status",
        "version",
        "oracle_id_display",
        "date_start",
        "date_finish",
        "cancel_reason",
        "fail_reason",
        "attempts_count",
        "last_attempt_at",
        "last_attempt_outcome",
        "date_created",
        "created_by",
        "date_updated",
        "updated_by",
        "date_deleted",
    )

    def get_readonly_fields(self, request, obj=None):
        fields = set(super().get_readonly_fields(request, obj)) | set(self.always_read_only)
        if obj is not None:
            fields |= {"method", "kind", "direction"}
            if not obj.is_planned():
                fields |= set(services.PLANNED_DATE_FIELDS)
            if obj.is_final or obj.is_deleted:
                fields |= set(services.EDITABLE_FIELDS)
        return tuple(fields)

    def get_inlines(self, request, obj):
        return [*(inline for extension in extensions for inline in extension.inlines), CommunicationHistoryInline]

    def get_urls(self):
        opts = self.model._meta
        own = [
            path(
                "<path:object_id>/transition/<str:name>/",
                self.admin_site.admin_view(self.transition_view),
                name=f"{opts.app_label}_{opts.model_name}_transition",
            ),
            path(
                "<path:object_id>/restore/",
                self.admin_site.admin_view(self.restore_view),
                name=f"{opts.app_label}_{opts.model_name}_restore",
            ),
        ]
        contributed = [url for extension in extensions for url in extension.get_urls(self)]
        return [*own, *contributed, *super().get_urls()]

    def transition_buttons(self, request: HttpRequest, obj: Communication) -> list[dict[str, Any]]:
        """The transitions allowed now, in the table's order, each with the form it asks for."""
        if obj.is_deleted or not self.has_change_permission(request, obj):
            return []
        available = {t.name for t in obj.get_available_status_transitions()}
        buttons = []
        for name, transition in admin_transitions().items():
            if name not in available:
                continue
            form_class = transition_form_class(transition)
            buttons.append(
                {
                    "name": name,
                    "label": transition.custom["label"],
                    "target": transition.target,
                    "form": form_class(communication=obj) if form_class else None,
                    "url": keep_filters(
                        request, reverse("admin:communications_communication_transition", args=[obj.pk, name])
                    ),
                }
            )
        return buttons

    def next_in_queue(self, request: HttpRequest, obj: Communication) -> str | None:
        """The change page of the row after this one in the queue it was opened from ("overdue",
        "planned for today"), for an operator working through it; None when opened otherwise.

        Only a queue on its own: with more filters or a search the list's order is the same but
        its rows are not, and a wrong "next" is worse than none.
        """
        params = QueryDict(request.GET.get("_changelist_filters", ""))
        queue = params.get(QueueFilter.parameter_name)
        if set(params) != {QueueFilter.parameter_name} or queue not in (QueueFilter.OVERDUE, QueueFilter.TODAY):
            return None
        if obj.date_planned_start is None:
            return None
        rows = QueueFilter(request, params.copy(), Communication, self).queryset(request, Communication.objects.all())
        after = Q(date_planned_start__gt=obj.date_planned_start) | Q(
            date_planned_start=obj.date_planned_start, uuid__gt=obj.uuid
        )
        following = rows.filter(after).order_by(*CommunicationChangeList.QUEUE_ORDERING).values_list("pk", flat=True)
        pk = following.first()
        if pk is None:
            return None
        return keep_filters(request, reverse("admin:communications_communication_change", args=[pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None:
            context.update(
                title=obj.subject or gettext("Communication"),
                subtitle=str(obj.pk),
                communication=obj,
                status_badge=status_badge(obj.status),
                overdue=is_overdue(obj),
                transitions=self.transition_buttons(request, obj),
                next_url=self.next_in_queue(request, obj),
                panels=[html for extension in extensions if (html := extension.panel(request, obj))],
                restore_url=(
                    keep_filters(request, reverse("admin:communications_communication_restore", args=[obj.pk]))
                    if obj.is_deleted and self.has_delete_permission(request, obj)
                    else None
                ),
                state_machine=mark_safe(localized_svg(current=obj.status)),  # our own SVG, every text escaped
                **self.page_context(request, obj),
            )
        return super().change_view(request, object_id, form_url, context)

    def page_context(self, request: HttpRequest, obj: Communication) -> dict[str, Any]:
        """What other parts of the page (the attempts) add to its context; see RecordAttemptMixin."""
        return {}

    def transition_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        """One transition of one row: a POST from its button; the form again if it is not valid."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        transition = admin_transitions().get(name)
        if transition is None:
            raise Http404
        change_url = keep_filters(request, reverse("admin:communications_communication_change", args=[obj.pk]))
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        form_class = transition_form_class(transition)
        form = form_class(request.POST, communication=obj) if form_class else None
        if form is not None and not form.is_valid():
            return TemplateResponse(
                request,
                "admin/communications/communication/transition_form.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "original": obj,
                    "title": transition.custom["label"],
                    "transition": {"name": name, "label": transition.custom["label"], "url": request.get_full_path()},
                    "form": form,
                    "status_badge": status_badge(obj.status),
                },
            )
        params = form.cleaned_data if form is not None else {}
        try:
            services.communication_transition(uuid=obj.pk, name=name, actor=request.user, source=Source.ADMIN, **params)
        except TransitionNotAllowed:
            self.message_user(request, refusal(name, Communication.objects.get(pk=obj.pk)), messages.ERROR)
        except (DomainError, ValidationError) as error:
            self.message_user(request, error_text(error), messages.ERROR)
        else:
            self.message_user(
                request,
                format_html(
                    _("{label}: done, the status is now {status}."),
                    label=transition.custom["label"],
                    status=status_badge(transition.target),
                ),
                messages.SUCCESS,
            )
        return HttpResponseRedirect(change_url)

    def restore_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_delete_permission(request, obj):
            raise PermissionDenied
        if request.method == "POST":
            try:
                services.communication_restore(uuid=obj.pk, actor=request.user, source=Source.ADMIN)
            except NotFound:
                self.message_user(request, _("This communication is not deleted."), messages.WARNING)
            else:
                self.message_user(request, _("Restored."), messages.SUCCESS)
        return HttpResponseRedirect(
            keep_filters(request, reverse("admin:communications_communication_change", args=[obj.pk]))
        )

    def has_add_permission(self, request):
        # Communications are born in the CRM (API), telephony or an import; operators find and
        # fix them here. Creating one by hand would skip the caller's own checks.
        return False

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in form.changed_data if field in services.EDITABLE_FIELDS}
        if data:
            services.communication_update(uuid=obj.pk, actor=request.user, source=Source.ADMIN, data=data)

    def delete_model(self, request, obj):
        services.communication_delete(uuid=obj.pk, actor=request.user, source=Source.ADMIN)
