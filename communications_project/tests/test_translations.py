"""The Russian catalogues are complete and their compiled forms (.mo) match the sources (.po)."""

import gettext
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale" / "ru" / "LC_MESSAGES"
# The project's catalogue, and those of apps that keep their own (how many messages each has at least).
CATALOGUES = {LOCALE: 80, ROOT / "credentials" / "locale" / "ru" / "LC_MESSAGES": 30}
ENTRY = re.compile(r'^(?:msgctxt (".*")\n)?msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', re.MULTILINE)


def _join(quoted: str) -> str:
    """The text of a quoted, possibly multi-line .po string, escapes undone."""
    raw = "".join(line[1:-1] for line in quoted.strip().splitlines())
    return raw.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")


@pytest.mark.parametrize(("locale", "at_least"), CATALOGUES.items(), ids=lambda value: str(value))
def test_every_message_is_translated_and_compiled(locale, at_least):
    source = (locale / "django.po").read_text(encoding="utf-8")
    # (context or None, msgid) -> msgstr; a context tells apart one English word with two meanings
    entries = {
        (_join(context) if context else None, _join(msgid)): _join(msgstr)
        for context, msgid, msgstr in ENTRY.findall(source)
    }
    entries.pop((None, ""), None)  # the header
    assert len(entries) > at_least
    untranslated = [msgid for msgid, msgstr in entries.items() if not msgstr]
    assert untranslated == []
    assert "#, fuzzy" not in source
    with (locale / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = [
        msgid
        for (context, msgid), msgstr in entries.items()
        if (compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)) != msgstr
    ]
    assert stale == [], "run: manage.py compilemessages -l ru"
