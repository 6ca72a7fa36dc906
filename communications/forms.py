"""What the admin asks for before a transition: on the change page (one row) and for a bulk action.

A transition names its form in the model's transition table (`custom["form"]`). Each form has
its own prefix, so it can sit on the change page beside the communication's own fields.
"""

from django import forms
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from dicts.models import CommunicationMethod

from .models import AttemptOutcome, Communication, FailReason


class TransitionForm(forms.Form):
    """`communication` is the row on the change page; None for a bulk action (several rows)."""

    def __init__(self, *args, communication: Communication | None = None, **kwargs):
        self.communication = communication
        super().__init__(*args, **kwargs)

    @property
    def bulk(self) -> bool:
        return self.communication is None


class CloseForm(TransitionForm):
    prefix = "close"
    result = forms.CharField(
        label=capfirst(_("result")),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("What came of it; the client's card shows this."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.bulk:
            # Results differ row by row; a bulk close may leave each row's own.
            self.fields["result"].required = False
            self.fields["result"].help_text = _("Optional: replaces the result of every selected row.")
        else:
            self.fields["result"].initial = self.communication.result

    def clean_result(self):
        # Blank in a bulk close means "keep each row's result", not "erase it".
        return self.cleaned_data["result"] or None


class FailForm(TransitionForm):
    prefix = "fail"
    fail_reason = forms.ChoiceField(label=capfirst(_("fail reason")), choices=[("", "---------"), *FailReason.choices])
    comment = forms.CharField(
        label=capfirst(_("comment")), widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), required=False
    )

    def clean_comment(self):
        return self.cleaned_data["comment"] or None  # blank keeps the comment already there


class CancelForm(TransitionForm):
    prefix = "cancel"
    cancel_reason = forms.CharField(
        label=capfirst(_("cancel reason")), widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), required=False
    )


class AttemptForm(forms.Form):
    """A try to reach the client made outside the service (a mobile phone, a messenger)."""

    prefix = "attempt"
    method = forms.ChoiceField(label=capfirst(_("method")))
    outcome = forms.ChoiceField(label=capfirst(_("outcome")), choices=[("", "---------"), *AttemptOutcome.choices])
    comment = forms.CharField(
        label=capfirst(_("comment")), widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), required=False
    )

    def __init__(self, *args, communication: Communication, **kwargs):
        super().__init__(*args, **kwargs)
        active = list(CommunicationMethod.objects.filter(is_active=True).values_list("code", "name"))
        self.fields["method"].choices = active
        self.fields["method"].initial = communication.method_id if communication.method_id in dict(active) else "call"
