"""gunicorn reads this file from the working directory by itself (`gunicorn communications_project.wsgi`).

Prometheus multiprocess mode: each worker is a process with its own counters, so every worker
writes its samples to files in PROMETHEUS_MULTIPROC_DIR and /metrics adds them up. The variable
must be set before a worker imports prometheus_client, hence here, in the master, at start.
"""

import os
import shutil
import tempfile
from pathlib import Path

_MARK = "_COMMUNICATIONS_METRICS_MASTER"
_created: list[str] = []  # a directory made here is removed when gunicorn exits


def _prepare_metrics_dir() -> None:
    if os.environ.get(_MARK) == str(os.getpid()):
        return  # a reload (HUP) reads this file again: the running workers' files stay
    os.environ[_MARK] = str(os.getpid())
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="communications-metrics-")
        _created.append(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        return
    # A previous run's files would be added to this run's counts: a restart starts from zero,
    # as Prometheus expects of a restarted process.
    Path(path).mkdir(parents=True, exist_ok=True)
    for stale in Path(path).glob("*.db"):
        stale.unlink()


_prepare_metrics_dir()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)
