"""Bulk transfer of communications: import from CSV or JSONL keyed by the legacy `oracle_id`
(SPEC §8), export and generated data in the same format.

- `formats`: reading the files (records with their line and raw text), the error report, and the
  writer the export and the generator use;
- `rules`: checking one row by the rules of the API and the state machine, from the same code;
- `loader`: storing checked rows in batches by the shared COPY loader
  (`communications_project.bulkload`), each batch one transaction holding the communications,
  their ID translations and one `import` history row each. Rejected rows go to the error report.

What the commands, the demo data and the tests use is named here.
"""

from .formats import COLUMNS, ErrorReport, Raw, Writer, cell, guess_format, read_file, records
from .loader import DEFAULT_BATCH_SIZE, ImportCounts, Loader, Row, import_file, import_rows
from .rules import CONTENT, Rules, reachable_statuses

__all__ = [
    "COLUMNS",
    "CONTENT",
    "DEFAULT_BATCH_SIZE",
    "ErrorReport",
    "ImportCounts",
    "Loader",
    "Raw",
    "Row",
    "Rules",
    "Writer",
    "cell",
    "guess_format",
    "import_file",
    "import_rows",
    "reachable_statuses",
    "read_file",
    "records",
]
