"""The Russian catalogue is complete and its compiled form (.mo) matches the source (.po)."""

import gettext
import re
from pathlib import Path

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "ru" / "LC_MESSAGES"
ENTRY = re.compile(r'^(?:msgctxt (".*")\n)?msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', re.MULTILINE)


def _join(quoted: str) -> str:
    """The text of a quoted, possibly multi-line .po string, escapes undone."""
    raw = "".join(line[1:-1] for line in quoted.strip().splitlines())
    return raw.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")


def test_every_message_is_translated_and_compiled():
    source = (LOCALE / "django.po").read_text(encoding="utf-8")
    # (context or None, msgid) -> msgstr; a context tells apart one English word with two meanings
    entries = {
        (_join(context) if context else None, _join(msgid)): _join(msgstr)
        for context, msgid, msgstr in ENTRY.findall(source)
    }
    entries.pop((None, ""), None)  # the header
    assert len(entries) > 80
    untranslated = [msgid for msgid, msgstr in entries.items() if not msgstr]
    assert untranslated == []
    assert "#, fuzzy" not in source
    with (LOCALE / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = [
        msgid
        for (context, msgid), msgstr in entries.items()
        if (compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)) != msgstr
    ]
    assert stale == [], "run: manage.py compilemessages -l ru"
