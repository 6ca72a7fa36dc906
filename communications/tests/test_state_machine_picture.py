"""The state-machine picture is drawn from the model's table and the committed one is current."""

from pathlib import Path

from django.conf import settings
from django.utils import translation

from communications.diagram import docs_svg, localized_svg
from communications.models import Communication, Status

PICTURE = Path(settings.BASE_DIR) / "docs" / "state-machine.svg"


def test_the_committed_picture_is_the_one_the_model_draws():
    assert PICTURE.read_text(encoding="utf-8") == docs_svg(), "stale: run `manage.py draw_state_machine`"


def test_the_picture_has_every_status_and_every_transition_of_the_table():
    picture = docs_svg()
    for status in Status:
        assert f">{status.value}</text>" in picture
    for name in Communication.transitions():
        assert f">{name}" in picture
    assert picture.count("marker-end=") == len(Communication.edges()) + 2  # and the two creations
    assert ">cancel [planned]</text>" in picture and ">start [planned]</text>" in picture


def test_the_admin_picture_speaks_the_operators_language_and_marks_the_status():
    with translation.override("ru"):
        picture = localized_svg(current=Status.IN_WORK)
    assert ">В работе</text>" in picture and ">Отменить (запланированная)</text>" in picture
    assert picture.count('fill="#dbeafe"') == 1  # one status marked
