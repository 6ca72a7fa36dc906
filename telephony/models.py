from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CallState(models.TextChoices):
    REQUESTED = "requested", _("Requested")  # being sent to Asterisk
    PLACED = "placed", _("Placed")  # Asterisk accepted it: the agent's phone rings
    ANSWERED = "answered", _("Answered")
    ENDED = "ended", _("Ended")
    FAILED = "failed", _("Failed")  # Asterisk unreachable or refused; nothing rang


class ClientOutcome(models.TextChoices):
    """What the client's leg did: the dialplan's Dial() status (ANSWER, BUSY, ...)."""

    ANSWERED = "answered", _("Answered")
    BUSY = "busy", _("Busy")
    NO_ANSWER = "no_answer", _("No answer")
    CANCELLED = "cancelled", _("Cancelled")  # the agent hung up while the client's phone rang
    CONGESTION = "congestion", _("Congestion")
    UNAVAILABLE = "unavailable", _("Unavailable")


# Q.850 causes the PBX reports most; any other code is kept as it came.
HANGUP_CAUSES = {16: "normal", 17: "busy", 19: "no_answer", 21: "rejected"}


class Outcome(models.TextChoices):
    """One word for the CRM card, derived from the call log's fields (never stored)."""

    IN_PROGRESS = "in_progress", _("In progress")
    NOT_PLACED = "not_placed", _("Not placed")
    TALKED = "talked", _("Talked")
    AGENT_NO_ANSWER = "agent_no_answer", _("Employee did not answer")
    AGENT_BUSY = "agent_busy", _("Employee busy")
    AGENT_DECLINED = "agent_declined", _("Employee declined")
    AGENT_FAILED = "agent_failed", _("Employee's phone failed")
    AGENT_HUNG_UP = "agent_hung_up", _("Employee hung up")
    CLIENT_BUSY = "client_busy", _("Client busy")
    CLIENT_NO_ANSWER = "client_no_answer", _("Client did not answer")
    CLIENT_UNREACHABLE = "client_unreachable", _("Client unreachable")
    UNKNOWN = "unknown", _("Unknown")


class CallLog(models.Model):
    """Every click-to-call attempt, and what became of it."""

    communication = models.ForeignKey(
        "communications.Communication", verbose_name=_("communication"), on_delete=models.CASCADE, related_name="calls"
    )
    channel_id = models.CharField(_("channel ID"), max_length=64, db_index=True)
    extension = models.CharField(_("extension"), max_length=16)
    phone = models.CharField(_("phone"), max_length=16)
    state = models.CharField(_("state"), max_length=16, choices=CallState.choices, default=CallState.REQUESTED)
    client_outcome = models.CharField(_("client's outcome"), max_length=16, choices=ClientOutcome.choices, blank=True)
    hangup_cause = models.PositiveSmallIntegerField(_("hangup cause"), null=True, blank=True)
    hangup_cause_txt = models.CharField(_("hangup cause text"), max_length=64, blank=True)
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
    # The attempt this call counted as once it ended (services.call_event); the link lives here, in
    # the higher app, so that communications knows nothing of calls.
    attempt = models.OneToOneField(
        "communications.Attempt",
        verbose_name=_("attempt"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("call log")
        ordering = ["-date_requested"]
        indexes = [
            # The listener's reconciliation reads the calls not finished yet: a sliver of the log.
            models.Index(
                fields=["date_requested"],
                name="calllog_open_idx",
                condition=models.Q(state__in=["requested", "placed", "answered"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.state}"

    @property
    def hangup_cause_name(self) -> str:
        if self.hangup_cause is None:
            return "unknown" if self.state == CallState.ENDED else ""
        return HANGUP_CAUSES.get(self.hangup_cause, "other")

    @property
    def outcome(self) -> str:
        if self.state == CallState.FAILED:
            return Outcome.NOT_PLACED
        if self.state != CallState.ENDED:
            return Outcome.IN_PROGRESS
        if self.client_outcome:
            return CLIENT_OUTCOMES[self.client_outcome]
        if self.date_answered is None:
            # The employee's leg ended before anyone picked up: Asterisk's cause says why.
            if self.hangup_cause is None:
                return Outcome.UNKNOWN
            return AGENT_CAUSES.get(self.hangup_cause, Outcome.AGENT_FAILED)
        if self.hangup_cause is None:
            return Outcome.UNKNOWN
        return Outcome.AGENT_HUNG_UP  # answered, then ended before the dialplan dialled the client


CLIENT_OUTCOMES = {
    ClientOutcome.ANSWERED: Outcome.TALKED,
    ClientOutcome.BUSY: Outcome.CLIENT_BUSY,
    ClientOutcome.NO_ANSWER: Outcome.CLIENT_NO_ANSWER,
    ClientOutcome.CANCELLED: Outcome.AGENT_HUNG_UP,
    ClientOutcome.CONGESTION: Outcome.CLIENT_UNREACHABLE,
    ClientOutcome.UNAVAILABLE: Outcome.CLIENT_UNREACHABLE,
}
AGENT_CAUSES = {17: Outcome.AGENT_BUSY, 19: Outcome.AGENT_NO_ANSWER, 21: Outcome.AGENT_DECLINED}


class ListenerState(models.TextChoices):
    CONNECTING = "connecting", _("Connecting")
    CONNECTED = "connected", _("Connected")
    DISCONNECTED = "disconnected", _("Disconnected")
    STOPPED = "stopped", _("Stopped")


class EventListener(models.Model):
    """The heartbeat of `manage.py telephony_events`, one row per Asterisk it listens to."""

    name = models.CharField(_("name"), max_length=255, unique=True)  # the ARI host:port
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process ID"))
    state = models.CharField(_("state"), max_length=16, choices=ListenerState.choices)
    state_since = models.DateTimeField(_("state since"))
    beat_at = models.DateTimeField(_("last heartbeat"))
    last_event_at = models.DateTimeField(_("last event"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("telephony events listener")
        verbose_name_plural = _("telephony events listeners")

    def __str__(self) -> str:
        return f"{self.name} {self.state}"
