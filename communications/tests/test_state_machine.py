"""Every (kind, status, transition) of SPEC §2.1: allowed with the right result, or refused unchanged."""

import threading

import pytest
from django.db import connection

from communications import services
from communications.models import Communication, CommunicationHistory, Kind, Source, Status
from communications_project.errors import TransitionNotAllowed

from .factories import CommunicationFactory

pytestmark = pytest.mark.django_db

# Written out by hand from the SPEC, not read from the model, so the model is checked against it.
ALLOWED = {
    (Kind.PLANNED, Status.CREATED): {
        "start": Status.IN_WORK,
        "close": Status.DONE,
        "fail": Status.FAILED,
        "cancel": Status.CANCELLED,
    },
    (Kind.PLANNED, Status.IN_WORK): {"close": Status.DONE, "fail": Status.FAILED, "cancel": Status.CANCELLED},
    (Kind.PLANNED, Status.DONE): {},
    (Kind.PLANNED, Status.CANCELLED): {},
    (Kind.PLANNED, Status.FAILED): {},
    (Kind.ACTUAL, Status.IN_WORK): {"close": Status.DONE, "fail": Status.FAILED},
    (Kind.ACTUAL, Status.DONE): {},
    (Kind.ACTUAL, Status.FAILED): {},
}
PARAMS = {
    "start": {},
    "close": {"result": "Client bought the car"},
    "fail": {"fail_reason": "busy", "comment": "Line busy twice"},
    "cancel": {"cancel_reason": "Client postponed"},
}
CASES = [(kind, status, name) for (kind, status) in ALLOWED for name in ("start", "close", "fail", "cancel")]


def _row(communication: Communication) -> dict:
    return Communication.objects.filter(pk=communication.pk).values().get()


@pytest.mark.parametrize(("kind", "status", "name"), CASES)
def test_transition_succeeds_or_is_refused_per_spec(kind, status, name, user):
    communication = CommunicationFactory(kind=kind, status=status)
    before = _row(communication)
    target = ALLOWED[(kind, status)].get(name)

    if target is None:
        with pytest.raises(TransitionNotAllowed) as error:
            services.communication_transition(
                uuid=communication.pk, name=name, actor=user, source=Source.API, **PARAMS[name]
            )
        assert status in error.value.detail
        assert _row(communication) == before
        assert not CommunicationHistory.objects.filter(communication=communication).exists()
        return

    services.communication_transition(uuid=communication.pk, name=name, actor=user, source=Source.API, **PARAMS[name])
    after = _row(communication)
    assert after["status"] == target
    assert after["version"] == before["version"] + 1
    assert after["updated_by_id"] == user.pk
    # date_finish is set exactly when the communication is done.
    assert (after["date_finish"] is not None) == (target == Status.DONE)
    if name == "start":
        assert after["date_start"] is not None
    if name == "close":
        assert after["result"] == "Client bought the car"
    if name == "fail":
        assert (after["fail_reason"], after["comment"]) == ("busy", "Line busy twice")
    if name == "cancel":
        assert after["cancel_reason"] == "Client postponed"
    entry = CommunicationHistory.objects.get(communication=communication)
    assert (entry.action, entry.transition, entry.status_from, entry.status_to) == (
        "transition",
        name,
        status,
        target,
    )
    assert entry.actor == user and entry.source == Source.API
    assert entry.changes["status"] == [status, target]


def test_actual_communication_cannot_be_cancelled(user):
    communication = CommunicationFactory(kind=Kind.ACTUAL)
    with pytest.raises(TransitionNotAllowed):
        services.communication_transition(uuid=communication.pk, name="cancel", actor=user, source=Source.API)
    assert _row(communication)["status"] == Status.IN_WORK


def test_failed_needs_a_known_reason(user):
    communication = CommunicationFactory()
    with pytest.raises(Exception) as error:
        services.communication_transition(
            uuid=communication.pk, name="fail", actor=user, source=Source.API, fail_reason="bored"
        )
    assert error.value.message_dict["fail_reason"][0].startswith("Required; one of: no_answer")
    assert _row(communication)["status"] == Status.CREATED


def test_close_refuses_a_finish_before_the_start(user):
    communication = CommunicationFactory(kind=Kind.ACTUAL)
    with pytest.raises(Exception) as error:
        services.communication_transition(
            uuid=communication.pk,
            name="close",
            actor=user,
            source=Source.API,
            date_finish=communication.date_start.replace(year=2000),
        )
    assert "date_finish" in error.value.message_dict
    assert _row(communication)["status"] == Status.IN_WORK


def test_status_cannot_be_assigned_directly():
    communication = CommunicationFactory()
    with pytest.raises(AttributeError):
        communication.status = Status.DONE


def test_allowed_actions_follow_the_state_machine():
    planned = CommunicationFactory(kind=Kind.PLANNED)
    actual = CommunicationFactory(kind=Kind.ACTUAL)
    done = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    assert sorted(planned.allowed_actions()) == ["cancel", "close", "failed", "start"]
    assert sorted(actual.allowed_actions()) == ["close", "failed"]
    assert done.allowed_actions() == []


def _race(uuid, names: list[str]) -> list[str]:
    """Run the transitions at once, each in its own thread and connection; return outcomes."""
    barrier = threading.Barrier(len(names))
    outcomes: list[str] = []

    def run(name: str) -> None:
        try:
            barrier.wait()
            services.communication_transition(uuid=uuid, name=name, actor=None, source=Source.API, **PARAMS[name])
            outcomes.append(f"won:{name}")
        except TransitionNotAllowed:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("attempt", range(20))
def test_racing_close_and_fail_have_exactly_one_winner(attempt):
    communication = CommunicationFactory(kind=Kind.ACTUAL)
    outcomes = _race(communication.pk, ["close", "fail"])

    winners = [outcome for outcome in outcomes if outcome.startswith("won:")]
    assert len(winners) == 1 and outcomes.count("refused") == 1
    row = _row(communication)
    expected = Status.DONE if winners[0] == "won:close" else Status.FAILED
    assert row["status"] == expected
    assert (row["date_finish"] is not None) == (expected == Status.DONE)
    assert row["fail_reason"] == ("busy" if expected == Status.FAILED else "")
    assert row["version"] == 2
    assert CommunicationHistory.objects.filter(communication=communication).count() == 1
