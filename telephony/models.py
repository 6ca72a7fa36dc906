from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CallState(models.TextChoices):
    REQUESTED = "requested", _("Requested")  # being sent to Asterisk
    PLACED = "placed", _("Placed")  # Asterisk accepted it: the agent's phone rings
    ANSWERED = "answered", _("Answered")
    ENDED = "ended", _("Ended")
    FAILED = "failed", _("Failed")  # Asterisk unreachable or refused; nothing rang


# Q.850 causes the PBX reports most; any other code is kept as it came.
HANGUP_CAUSES = {16: "normal", 17: "busy", 19: "no_answer", 21: "rejected"}


class CallLog(models.Model):
    """Every click-to-call attempt, and what became of it."""

    communication = models.ForeignKey(
        "communications.Communication", verbose_name=_("communication"), on_delete=models.CASCADE, related_name="calls"
    )
    channel_id = models.CharField(_("channel ID"), max_length=64, db_index=True)
    extension = models.CharField(_("extension"), max_length=16)
    phone = models.CharField(_("phone"), max_length=16)
    state = models.CharField(_("state"), max_length=16, choices=CallState.choices, default=CallState.REQUESTED)
    hangup_cause = models.PositiveSmallIntegerField(_("hangup cause"), null=True, blank=True)
    duration_sec = models.PositiveIntegerField(_("duration, s"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    date_requested = models.DateTimeField(_("requested"))
    date_answered = models.DateTimeField(_("answered"), null=True, blank=True)
    date_ended = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("call log")
        ordering = ["-date_requested"]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.state}"

    @property
    def hangup_cause_name(self) -> str:
        if self.hangup_cause is None:
            return ""
        return HANGUP_CAUSES.get(self.hangup_cause, "other")
