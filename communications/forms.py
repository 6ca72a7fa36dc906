"""Forms the admin shows before a transition that needs a reason."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import FailReason


class FailForm(forms.Form):
    fail_reason = forms.ChoiceField(label=_("fail reason"), choices=FailReason.choices)
    comment = forms.CharField(label=_("comment"), widget=forms.Textarea, required=False)


class CancelForm(forms.Form):
    cancel_reason = forms.CharField(label=_("cancel reason"), widget=forms.Textarea, required=False)
