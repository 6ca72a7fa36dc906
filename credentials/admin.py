"""API keys in the admin: made (and shown once), recognised by their prefix, revoked. Provider users, read-only."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import ApiKey, ApiKeyStatus, ExternalIdentity


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["user", "name", "date_expires"]

    def clean_date_expires(self):
        expires = self.cleaned_data["date_expires"]
        if expires is not None and expires <= timezone.now():
            raise forms.ValidationError(_("The expiry must be in the future."))
        return expires


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return ApiKeyStatus.choices

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == ApiKeyStatus.ACTIVE:
            return queryset.filter(date_revoked__isnull=True).exclude(date_expires__lte=now)
        if self.value() == ApiKeyStatus.EXPIRED:
            return queryset.filter(date_revoked__isnull=True, date_expires__lte=now)
        if self.value() == ApiKeyStatus.REVOKED:
            return queryset.filter(date_revoked__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["prefix", "name", "user", "status", "date_created", "date_expires", "date_last_used"]
    list_filter = [StatusFilter]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    actions = ["revoke"]
    readonly_fields = [
        "prefix",
        "status",
        "date_created",
        "created_by",
        "date_last_used",
        "date_revoked",
        "revoked_by",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "date_expires"]
        return ["prefix", "user", "name", "status", "date_created", "created_by", "date_expires", "date_last_used",
                "date_revoked", "revoked_by"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        # The owner and the expiry of a key are fixed: for others, make a new key and revoke this one.
        return self.readonly_fields if obj is None else [*self.readonly_fields, "user", "date_expires"]

    @admin.display(description=_("status"))
    def status(self, obj: ApiKey) -> str:
        return ApiKeyStatus(obj.status()).label

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # revoke: the key stays, to be seen (who had which, until when)
        return actions

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created, key = services.api_key_create(
            user=obj.user, name=obj.name, expires_at=obj.date_expires, created_by=request.user
        )
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding, obj._state.db = False, created._state.db
        request._created_api_key = key

    def response_add(self, request, obj, post_url_continue=None):
        """The key, shown on this one page and nowhere else (not in a message kept in the session)."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("API key created"),
            "api_key": obj,
            "key": request._created_api_key,
        }
        response = TemplateResponse(request, "admin/credentials/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Revoke the selected API keys"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = sum(services.api_key_revoke(prefix=key.prefix, revoked_by=request.user)[1] for key in queryset)
        message = ngettext("%(count)d API key revoked.", "%(count)d API keys revoked.", revoked)
        self.message_user(request, message % {"count": revoked}, messages.SUCCESS)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    """Made on an employee's first request with a bearer token; their groups follow the token."""

    list_display = ["subject", "user", "issuer", "date_created", "date_last_seen"]
    search_fields = ["subject", "user__username"]
    list_select_related = ["user"]
    readonly_fields = ["user", "issuer", "subject", "date_created", "date_last_seen"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # to lock an employee out, deactivate their user
