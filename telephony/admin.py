"""Telephony's screens: the call log, and its part of the communication's page (registered there,
so `communications` never imports this app): the Call button and the calls inline."""

import uuid as uuid_lib
from functools import partial

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from communications.admin import (
    CommunicationAdminExtension,
    ReadOnlyInline,
    keep_filters,
    register_extension,
    short_datetime,
)
from communications.details import PHONE_RE
from communications.models import Communication, Direction
from communications_project.errors import DomainError

from . import services
from .ari import TelephonyNotConfigured, TelephonyRejected, TelephonyUnavailable
from .models import CallLog, CallState, EventListener, Outcome

# The operator's extension, remembered by the browser at the desk: typed once, not at every call.
EXTENSION_COOKIE = "telephony_extension"
EXTENSION_COOKIE_AGE = 365 * 24 * 3600


# The call's own words: the model's labels share msgids with the communication's statuses
# ("Failed" is a communication's "Аут", not a call that never rang).
STATE_LABELS = {
    CallState.REQUESTED: pgettext_lazy("call state", "requested"),
    CallState.PLACED: pgettext_lazy("call state", "ringing"),
    CallState.ANSWERED: pgettext_lazy("call state", "answered"),
    CallState.ENDED: pgettext_lazy("call state", "ended"),
    CallState.FAILED: pgettext_lazy("call state", "not placed"),
}


def call_state_badge(state: str) -> SafeString:
    label = STATE_LABELS.get(state) or dict(CallState.choices).get(state, state)
    return format_html('<span class="badge call-{}">{}</span>', state, label)


class CallLogInline(ReadOnlyInline):
    """The calls placed for this communication, newest first. A column is a name in `fields`: a
    call-log field as it is, or a method below where it reads better together."""

    model = CallLog
    fields = (
        "requested_display",
        "requested_by",
        "extension",
        "phone",
        "state_display",
        "outcome_display",
        "hangup_display",
        "duration_sec",
        "date_answered",
        "date_ended",
        "error",
    )
    ordering = ("-date_requested", "-id")
    select_related = ("requested_by",)
    classes = ("calls",)

    def has_view_permission(self, request, obj=None):
        # The calls are part of the communication: who may see it sees them (the Operators group
        # holds no call-log permission of its own).
        return request.user.has_perm("communications.view_communication") or super().has_view_permission(request, obj)

    @admin.display(description=_("requested"))
    def requested_display(self, call: CallLog) -> str:
        return short_datetime(call.date_requested)

    @admin.display(description=_("state"))
    def state_display(self, call: CallLog) -> SafeString:
        return call_state_badge(call.state)

    @admin.display(description=_("outcome"))
    def outcome_display(self, call: CallLog) -> str:
        """One word for what became of the call (the call log derives it from its fields)."""
        return str(dict(Outcome.choices).get(call.outcome, call.outcome))

    @admin.display(description=_("hangup cause"))
    def hangup_display(self, call: CallLog) -> str:
        if call.hangup_cause is None:
            return ""
        return f"{call.hangup_cause} ({call.hangup_cause_txt or call.hangup_cause_name})"


class CallForm(forms.Form):
    prefix = "call"
    extension = forms.RegexField(
        r"^[0-9]{2,15}$",
        label=capfirst(_("your extension")),
        error_messages={"invalid": _("Digits only, 2 to 15.")},
        widget=forms.TextInput(attrs={"size": 6, "inputmode": "numeric", "autocomplete": "off"}),
    )
    phone = forms.RegexField(
        PHONE_RE.pattern,
        label=capfirst(_("client's phone")),
        required=False,
        error_messages={"invalid": _("Enter the phone number in E.164 form, e.g. +79161234567.")},
        widget=forms.TextInput(attrs={"size": 14}),
    )
    # One per rendered button: a double click reuses it, so Asterisk refuses the second channel
    # instead of ringing twice (the service derives the channel ID from it).
    attempt = forms.UUIDField(widget=forms.HiddenInput)


def callable_now(communication: Communication) -> bool:
    """What the service accepts (an outbound call, open): the button shows only then."""
    return (
        communication.method_id == "call"
        and communication.direction == Direction.OUTBOUND
        and communication.status in services.CALLABLE_STATUSES
        and not communication.is_deleted
    )


class TelephonyAdminExtension(CommunicationAdminExtension):
    inlines = (CallLogInline,)

    def get_urls(self, model_admin) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/call/",
                model_admin.admin_site.admin_view(partial(self.call_view, model_admin)),
                name="communications_communication_call",
            )
        ]

    def panel(self, request: HttpRequest, communication: Communication) -> str:
        if not (
            settings.ASTERISK_ARI_URL
            and callable_now(communication)
            and request.user.has_perm("communications.call_phone")
        ):
            return ""
        form = CallForm(
            initial={
                "extension": request.COOKIES.get(EXTENSION_COOKIE, ""),
                "phone": communication.details.get("phone", ""),
                "attempt": uuid_lib.uuid4(),
            }
        )
        return render_to_string(
            "admin/telephony/call_button.html",
            {
                "form": form,
                "url": keep_filters(
                    request, reverse("admin:communications_communication_call", args=[communication.pk])
                ),
            },
            request=request,
        )

    def call_view(self, model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
        """Place the call through the same service as the API, then show what Asterisk said."""
        communication = model_admin.get_object(request, unquote(object_id))
        if communication is None:
            return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
        if not request.user.has_perm("communications.call_phone"):
            raise PermissionDenied
        response = HttpResponseRedirect(
            keep_filters(request, reverse("admin:communications_communication_change", args=[communication.pk]))
        )
        if request.method != "POST":
            return response
        form = CallForm(request.POST)
        if not form.is_valid():
            errors = "; ".join(f"{form.fields[name].label}: {' '.join(msgs)}" for name, msgs in form.errors.items())
            model_admin.message_user(request, gettext("The call was not placed: %s") % errors, messages.ERROR)
            return response
        extension = form.cleaned_data["extension"]
        # The operator's desk phone, whatever the PBX answers this time.
        response.set_cookie(
            EXTENSION_COOKIE,
            extension,
            max_age=EXTENSION_COOKIE_AGE,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
        try:
            call = services.call_place(
                uuid=communication.pk,
                extension=extension,
                phone=form.cleaned_data["phone"] or None,
                actor=request.user,
                idempotency_key=f"admin:{form.cleaned_data['attempt']}",
            )
        except TelephonyRejected as error:
            text = gettext("Asterisk refused the call: %s") % error.detail
        except TelephonyNotConfigured:
            text = gettext("Telephony is not configured.")
        except TelephonyUnavailable as error:
            text = gettext("The PBX cannot be reached, nothing rang: %s") % error.detail
        except ValidationError as error:
            text = gettext("The call was not placed: %s") % "; ".join(error.messages)
        except DomainError as error:
            text = gettext("The call was not placed: %s") % error.detail
        else:
            model_admin.message_user(
                request,
                gettext("Call placed: your phone %(extension)s rings first, then %(phone)s is dialled.")
                % {"extension": call.extension, "phone": call.phone},
                messages.SUCCESS,
            )
            return response
        model_admin.message_user(request, text, messages.ERROR)
        return response


register_extension(TelephonyAdminExtension())


class ReadOnlyAdmin(admin.ModelAdmin):
    """What happened, written by the service and the listener: shown, never edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EventListener)
class EventListenerAdmin(ReadOnlyAdmin):
    """The heartbeat of `manage.py telephony_events`: is it connected, when did it last hear Asterisk."""

    list_display = ("name", "state", "state_since", "beat_at", "last_event_at", "host", "pid", "last_error")


@admin.register(CallLog)
class CallLogAdmin(ReadOnlyAdmin):
    """Read-only: the log is what happened."""

    list_display = (
        "date_requested",
        "communication",
        "extension",
        "phone",
        "state",
        "client_outcome",
        "hangup_cause",
        "duration_sec",
    )
    list_filter = ("state", "client_outcome", "date_requested")
    search_fields = ("=channel_id", "=phone", "=extension")
    list_select_related = ("communication",)
    show_full_result_count = False
