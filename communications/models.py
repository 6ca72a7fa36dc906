"""The communication, its state machine and its history (SPEC §2, §2.1)."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KT
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, Transition, transition
from uuid_utils.compat import uuid7

from .limits import SUBJECT_MAX


class Kind(models.TextChoices):
    ACTUAL = "actual", _("Actual")
    PLANNED = "planned", _("Planned")


class Direction(models.TextChoices):
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")


class Status(models.TextChoices):
    CREATED = "created", _("Created")
    IN_WORK = "in_work", _("In work")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


FINAL_STATUSES = frozenset({Status.DONE, Status.CANCELLED, Status.FAILED})
OPEN_STATUSES = [Status.CREATED, Status.IN_WORK]


class FailReason(models.TextChoices):
    NO_ANSWER = "no_answer", _("No answer")
    BUSY = "busy", _("Busy")
    WRONG_NUMBER = "wrong_number", _("Wrong number")
    CLIENT_REFUSED = "client_refused", _("Client refused")
    OTHER = "other", _("Other")


class Source(models.TextChoices):
    """Where a write came from, kept in the history."""

    API = "api", _("API")
    ADMIN = "admin", _("Admin")
    TELEPHONY = "telephony", _("Telephony")
    IMPORT = "import", _("Import")
    # The attempt policy's own steps (re-plan, fail at the limit), after an attempt recorded by one of the above.
    POLICY = "policy", _("Attempt policy")


class AttemptOutcome(models.TextChoices):
    """What an attempt to reach the client came to (a call's outcome maps onto these)."""

    REACHED = "reached", _("Reached")
    NO_ANSWER = "no_answer", _("No answer")
    BUSY = "busy", _("Busy")
    WRONG_NUMBER = "wrong_number", _("Wrong number")
    LEFT_MESSAGE = "left_message", _("Left a message")


# The methods whose inbound communications are leads (docs/REPORTS.md).
LEAD_METHODS = ("site_request", "mobile_app_request")


# What makes a communication a lead; the condition of the lead indexes.
LEAD_CONDITION = Q(direction=Direction.INBOUND, method__in=LEAD_METHODS, date_deleted__isnull=True)


class CommunicationQuerySet(models.QuerySet):
    def alive(self) -> "CommunicationQuerySet":
        return self.filter(date_deleted__isnull=True)

    def deleted(self) -> "CommunicationQuerySet":
        return self.filter(date_deleted__isnull=False)


class Communication(models.Model):
    # UUIDv7: time-ordered, so new rows land at the end of the primary key index.
    uuid = models.UUIDField(_("UUID"), primary_key=True, default=uuid7, editable=False)
    method = models.ForeignKey(
        "dicts.CommunicationMethod",
        verbose_name=_("method"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    direction = models.CharField(_("direction"), max_length=16, choices=Direction.choices)
    status = FSMField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED, protected=True)

    client_uuid = models.UUIDField(_("client"))
    employee_uuid = models.UUIDField(_("employee"), null=True, blank=True)
    dealer_uuid = models.UUIDField(_("dealer"), null=True, blank=True)

    subject = models.CharField(_("subject"), max_length=SUBJECT_MAX, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    result = models.TextField(_("result"), blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder)

    date_planned_start = models.DateTimeField(_("planned start"), null=True, blank=True)
    date_planned_finish = models.DateTimeField(_("planned finish"), null=True, blank=True)
    date_start = models.DateTimeField(_("started"), null=True, blank=True)
    date_finish = models.DateTimeField(_("finished"), null=True, blank=True)

    cancel_reason = models.TextField(_("cancel reason"), blank=True)
    fail_reason = models.CharField(_("fail reason"), max_length=32, choices=FailReason.choices, blank=True)

    date_created = models.DateTimeField(_("created"), editable=False)
    date_updated = models.DateTimeField(_("updated"), editable=False)
    date_deleted = models.DateTimeField(_("deleted"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)

    # Kept by the attempt service in the attempt's own transaction (no count per read). The
    # database defaults serve the bulk loaders, which name their columns.
    attempts_count = models.PositiveIntegerField(_("attempts"), default=0, db_default=0, editable=False)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True, editable=False)
    last_attempt_outcome = models.CharField(
        _("last attempt's outcome"),
        max_length=16,
        choices=AttemptOutcome.choices,
        blank=True,
        default="",
        db_default="",
        editable=False,
    )

    objects = CommunicationQuerySet.as_manager()

    class Meta:
        verbose_name = _("communication")
        verbose_name_plural = _("communications")
        permissions = [
            ("call_phone", _("Can place calls to clients")),
            ("view_reports", _("Can view reports and the supervisors' dashboard")),
        ]
        indexes = [
            # Keyset pagination and the default ordering; uuid breaks ties.
            models.Index(fields=["date_created", "uuid"], name="comm_created_idx"),
            models.Index(fields=["date_planned_start", "uuid"], name="comm_planned_start_idx"),
            # The operators' queue: planned rows still open, by when they are due ("overdue",
            # "planned for today"). Small: only the open planned rows are in it.
            models.Index(
                fields=["date_planned_start", "uuid"],
                condition=Q(kind=Kind.PLANNED, status__in=OPEN_STATUSES, date_deleted__isnull=True),
                name="comm_open_planned_idx",
            ),
            models.Index(fields=["date_updated"], name="comm_updated_idx"),
            models.Index(fields=["date_finish"], name="comm_finish_idx"),
            # Each list filter, then the list's order (-date_created, -uuid) read backwards: a filtered
            # page is a short index range, however large the table.
            models.Index(fields=["client_uuid", "date_created", "uuid"], name="comm_client_list_idx"),
            models.Index(fields=["employee_uuid", "date_created", "uuid"], name="comm_employee_list_idx"),
            models.Index(fields=["dealer_uuid", "date_created", "uuid"], name="comm_dealer_list_idx"),
            models.Index(fields=["status", "date_created", "uuid"], name="comm_status_list_idx"),
            models.Index(fields=["method", "date_created", "uuid"], name="comm_method_list_idx"),
            # Operators search by the client's phone.
            models.Index(KT("details__phone"), name="comm_details_phone_idx"),
            # Leads by when they came (lead response, docs/REPORTS.md): across dealerships, and
            # per dealership. Small: only inbound site and app requests are in them.
            models.Index(fields=["date_created"], condition=LEAD_CONDITION, name="comm_lead_idx"),
            models.Index(fields=["dealer_uuid", "date_created"], condition=LEAD_CONDITION, name="comm_lead_dealer_idx"),
            # A lead's first contact by an outbound communication (docs/REPORTS.md): the client's
            # first since the lead, from the index alone (the report probes it once per lead).
            models.Index(
                fields=["client_uuid", "date_created"],
                condition=Q(direction=Direction.OUTBOUND, date_deleted__isnull=True) & ~Q(status=Status.CANCELLED),
                name="comm_outbound_client_idx",
            ),
            # The supervisors' dashboard: each employee's open planned communications in a
            # dealership, and how many are overdue, read from the index alone.
            models.Index(
                fields=["dealer_uuid", "employee_uuid", "date_planned_start"],
                condition=Q(kind=Kind.PLANNED, status__in=OPEN_STATUSES, date_deleted__isnull=True),
                name="comm_open_planned_dealer_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(date_finish__isnull=True) | Q(status=Status.DONE),
                name="comm_date_finish_only_when_done",
            ),
            models.CheckConstraint(
                condition=~Q(status=Status.DONE) | Q(date_finish__isnull=False),
                name="comm_done_has_date_finish",
            ),
            models.CheckConstraint(
                condition=Q(kind=Kind.PLANNED) | ~Q(status=Status.CANCELLED),
                name="comm_only_planned_cancelled",
            ),
            models.CheckConstraint(
                condition=Q(date_planned_finish__isnull=True)
                | Q(date_planned_start__isnull=True)
                | Q(date_planned_finish__gte=models.F("date_planned_start")),
                name="comm_planned_finish_after_start",
            ),
        ]

    def __str__(self) -> str:
        return str(self.uuid)

    @property
    def is_cancelled(self) -> bool:
        return self.status == Status.CANCELLED

    @property
    def is_failed(self) -> bool:
        return self.status == Status.FAILED

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_deleted(self) -> bool:
        return self.date_deleted is not None

    @staticmethod
    def initial_status(kind: str) -> Status:
        """An actual communication is happening now; a planned one waits to be started."""
        return Status.IN_WORK if kind == Kind.ACTUAL else Status.CREATED

    @classmethod
    def transitions(cls) -> dict[str, Transition]:
        """The state machine as data: transition method name -> Transition, in the order the class
        declares them (django-fsm finds them alphabetically). django-fsm keeps one Transition per
        source, all alike but for `source`; this keeps one of them (`edges()` has every source)."""
        found = {t.name: t for t in cls._meta.get_field("status").get_all_transitions(cls)}
        return {name: found[name] for name in vars(cls) if name in found}

    @classmethod
    def edges(cls) -> list[tuple[str, str, str]]:
        """Every (transition, source, target) of `transitions()`, in their order: what the
        state-machine picture draws (communications/diagram.py)."""
        return [
            (name, source, transition.target)
            for name in cls.transitions()
            for source, transition in getattr(cls, name)._django_fsm.transitions.items()
        ]

    def allowed_actions(self) -> list[str]:
        """API names of the transitions possible now, in the order the model declares them."""
        available = {t.name for t in self.get_available_status_transitions()}
        return [t.custom["action"] for name, t in self.transitions().items() if name in available]

    # Conditions of the state machine: pure, no I/O.

    def is_planned(self) -> bool:
        return self.kind == Kind.PLANNED

    # The state machine. `custom["action"]` is the API's name for the transition (the URL
    # segment and the entry in `allowed_actions`); `label` is the operator's button.

    @transition(
        field=status,
        source=Status.CREATED,
        target=Status.IN_WORK,
        conditions=[is_planned],
        custom={"action": "start", "label": _("Start"), "admin": True},
    )
    def start(self, *, date_start) -> None:
        self.date_start = date_start

    @transition(
        field=status,
        source=OPEN_STATUSES,
        target=Status.DONE,
        custom={
            "action": "close",
            "label": _("Close as done"),
            "admin": True,
            "form": "communications.forms.CloseForm",
        },
    )
    def close(self, *, date_finish, result: str | None = None) -> None:
        self.date_finish = date_finish
        if result is not None:
            self.result = result

    @transition(
        field=status,
        source=OPEN_STATUSES,
        target=Status.FAILED,
        custom={
            "action": "failed",
            "label": _("Mark as failed"),
            "admin": True,
            "form": "communications.forms.FailForm",
        },
    )
    def fail(self, *, fail_reason: str, comment: str | None = None) -> None:
        self.fail_reason = fail_reason
        if comment is not None:
            self.comment = comment

    @transition(
        field=status,
        source=OPEN_STATUSES,
        target=Status.CANCELLED,
        conditions=[is_planned],
        custom={
            "action": "cancel",
            "label": _("Cancel"),
            "admin": True,
            "form": "communications.forms.CancelForm",
        },
    )
    def cancel(self, *, cancel_reason: str = "") -> None:
        self.cancel_reason = cancel_reason


class HistoryAction(models.TextChoices):
    CREATE = "create", _("Created")
    UPDATE = "update", _("Updated")
    TRANSITION = "transition", _("Status changed")
    DELETE = "delete", _("Deleted")
    RESTORE = "restore", _("Restored")


class CommunicationHistory(models.Model):
    """One row per write to a communication: who, when, from where, what changed."""

    communication = models.ForeignKey(
        Communication,
        verbose_name=_("communication"),
        on_delete=models.CASCADE,
        related_name="history",
        db_index=False,  # comm_history_idx (communication, date) serves it; a second index only slows writes
    )
    date = models.DateTimeField(_("date"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("who"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    action = models.CharField(_("action"), max_length=16, choices=HistoryAction.choices)
    transition = models.CharField(_("transition"), max_length=32, blank=True)
    status_from = models.CharField(_("from"), max_length=16, choices=Status.choices, blank=True)
    status_to = models.CharField(_("to"), max_length=16, choices=Status.choices, blank=True)
    # {"field": [old, new], ...}
    changes = models.JSONField(_("changes"), default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        verbose_name = _("history entry")
        verbose_name_plural = _("history")
        ordering = ["date", "id"]
        indexes = [models.Index(fields=["communication", "date"], name="comm_history_idx")]

    def __str__(self) -> str:
        return f"{self.communication_id} {self.action} {self.date:%Y-%m-%d %H:%M:%S}"


class Attempt(models.Model):
    """One try to reach the client for a communication: a call placed through click-to-call (its
    outcome is the call's), or one recorded through the API for a try made elsewhere."""

    uuid = models.UUIDField(_("UUID"), primary_key=True, default=uuid7, editable=False)
    communication = models.ForeignKey(
        Communication,
        verbose_name=_("communication"),
        on_delete=models.CASCADE,
        related_name="attempts",
        db_index=False,  # attempt_comm_date_idx (communication, date) serves it
    )
    method = models.ForeignKey(
        "dicts.CommunicationMethod",
        verbose_name=_("method"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=AttemptOutcome.choices)
    date = models.DateTimeField(_("date"))
    comment = models.TextField(_("comment"), blank=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    call_id = models.CharField(_("call ID"), max_length=64, blank=True)  # the channel, for a click-to-call
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    date_created = models.DateTimeField(_("recorded"), editable=False)

    class Meta:
        verbose_name = _("attempt")
        verbose_name_plural = _("attempts")
        indexes = [
            # A communication's attempts newest first, and a lead's first attempt (one probe).
            models.Index(fields=["communication", "date"], name="attempt_comm_date_idx"),
            # The dashboard's attempts of a day.
            models.Index(fields=["date"], name="attempt_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.communication_id} {self.outcome} {self.date:%Y-%m-%d %H:%M}"


# The change feed (docs/EVENTS.md; communications/events.py writes and reads it).


class EventType(models.TextChoices):
    CREATED = "communication.created", _("Created")
    UPDATED = "communication.updated", _("Updated")
    STATUS_CHANGED = "communication.status_changed", _("Status changed")
    DELETED = "communication.deleted", _("Deleted")
    RESTORED = "communication.restored", _("Restored")


class CurrentTransactionId(models.Func):
    """The writing transaction's ID as a bigint (`pg_current_xact_id()`); 0 on SQLite (the demo)."""

    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "0", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


class CommunicationEvent(models.Model):
    """One change of a communication, written in the transaction of the change (an outbox).

    Its place in the feed is (`txid`, `id`): see communications/events.py for why that never skips.
    """

    id = models.BigAutoField(primary_key=True)
    # The writing transaction's ID (pg_current_xact_id()), raised to the communication's previous
    # event's when that is higher; 0 on SQLite, where `id` alone orders the feed.
    # The default serves bulk loads (COPY of new communications, which have no previous event).
    txid = models.BigIntegerField(_("transaction"), db_default=CurrentTransactionId())
    event_id = models.UUIDField(_("event ID"))  # CloudEvents `id`, a UUIDv7; unique by construction
    type = models.CharField(_("type"), max_length=32, choices=EventType.choices)
    subject = models.UUIDField(_("communication"))  # no foreign key: events outlive nothing and lock nothing
    dealer_uuid = models.UUIDField(_("dealer"), null=True, blank=True)
    time = models.DateTimeField(_("time"))
    # The CloudEvents `data` as JSON text: written once, sent byte for byte over HTTP and AMQP.
    data = models.TextField(_("data"))

    class Meta:
        verbose_name = _("change event")
        verbose_name_plural = _("change events")
        indexes = [
            models.Index(fields=["txid", "id"], name="comm_event_position_idx"),
            models.Index(fields=["subject", "txid", "id"], name="comm_event_subject_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.subject}"


class EventMark(models.Model):
    """A position in the feed with a name: `purged` is the last event retention deleted."""

    name = models.CharField(_("name"), max_length=64, primary_key=True)
    txid = models.BigIntegerField(_("transaction"))
    event = models.BigIntegerField(_("event"))
    date_updated = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("change feed mark")
        verbose_name_plural = _("change feed marks")

    def __str__(self) -> str:
        return f"{self.name} {self.txid:016x}{self.event:016x}"


class RelayState(models.TextChoices):
    WAITING = "waiting", _("Waiting for the lock")
    CONNECTING = "connecting", _("Connecting")
    PUBLISHING = "publishing", _("Publishing")
    DISCONNECTED = "disconnected", _("Disconnected")
    STOPPED = "stopped", _("Stopped")


class EventRelay(models.Model):
    """`manage.py publish_events`: how far it has published (only what the broker confirmed), and its heartbeat."""

    name = models.CharField(_("exchange"), max_length=255, primary_key=True)
    txid = models.BigIntegerField(_("transaction"), default=0)
    event = models.BigIntegerField(_("event"), default=0)
    published = models.BigIntegerField(_("published"), default=0)
    host = models.CharField(_("host"), max_length=255, blank=True)
    pid = models.PositiveIntegerField(_("process ID"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=16, choices=RelayState.choices)
    state_since = models.DateTimeField(_("state since"))
    beat_at = models.DateTimeField(_("last heartbeat"))
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("event relay")
        verbose_name_plural = _("event relays")

    def __str__(self) -> str:
        return f"{self.name} {self.state}"
