"""A throw-away PostgreSQL primary and its streaming replica, on loopback, for the replica tests.

Both run as the `postgres` user (PostgreSQL refuses root) from a temporary directory, on ports the
OS says are free, each with its own minimal configuration; `close()` removes everything.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

PRIMARY_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
wal_level = replica
max_wal_senders = 4
max_connections = 40
shared_buffers = 16MB
fsync = off
full_page_writes = off
logging_collector = off
"""
HBA = """
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""


def bindir() -> Path | None:
    """The newest PostgreSQL server binaries here (Debian keeps them off PATH), or None."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def missing() -> str | None:
    """Why a pair cannot be made on this machine, or None."""
    if bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres user to run the servers as"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgPair:
    def __init__(self, dbname: str = "communications"):
        self.bin = bindir()
        self.dbname = dbname
        self.root = Path(tempfile.mkdtemp(prefix="pgpair-"))
        self.primary_dir = self.root / "primary"
        self.replica_dir = self.root / "replica"
        self.primary_port = free_port()
        self.replica_port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> str:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _ctl(self, data: Path, action: str, *extra: str) -> None:
        self._run("pg_ctl", "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "30", action, *extra)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.primary_dir), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        with open(self.primary_dir / "postgresql.conf", "a") as conf:
            conf.write(PRIMARY_CONF.format(port=self.primary_port, sockets=self.root))
        (self.primary_dir / "pg_hba.conf").write_text(HBA)
        self._ctl(self.primary_dir, "start")
        with self.connect(self.primary_port, "postgres") as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(self.replica_dir), "-R", "-X", "stream", "--no-sync", "-c", "fast",
        )  # fmt: skip
        with open(self.replica_dir / "postgresql.conf", "a") as conf:
            conf.write(f"port = {self.replica_port}\nhot_standby = on\n")
        self.start_replica()

    def start_replica(self) -> None:
        self._ctl(self.replica_dir, "start")

    def stop_replica(self) -> None:
        self._ctl(self.replica_dir, "stop", "-m", "fast")

    def ensure_running(self) -> None:
        """The replica up and replaying, whatever the last test left."""
        if not (self.replica_dir / "postmaster.pid").exists():
            self.start_replica()
        if self.replica_sql("SELECT pg_get_wal_replay_pause_state()")[0] != "not paused":
            self.resume()

    def pause(self) -> None:
        self.replica_sql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while self.replica_sql("SELECT pg_get_wal_replay_pause_state()")[0] != "paused":
            if time.monotonic() > deadline:
                raise TimeoutError("replay did not pause")
            time.sleep(0.02)

    def resume(self) -> None:
        self.replica_sql("SELECT pg_wal_replay_resume()")

    def connect(self, port: int, dbname: str | None = None) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname=dbname or self.dbname, autocommit=True
        )

    def replica_sql(self, sql: str):
        with self.connect(self.replica_port) as conn:
            return conn.execute(sql).fetchone()

    def wait_for_replay(self, timeout: float = 15.0) -> None:
        """Until the replica has replayed everything the primary had written when this was called."""
        with self.connect(self.primary_port) as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.replica_sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0]:
                return
            time.sleep(0.05)
        raise TimeoutError(f"the replica did not replay up to {target}")

    def close(self) -> None:
        for data in (self.replica_dir, self.primary_dir):
            if (data / "postmaster.pid").exists():
                try:
                    self._ctl(data, "stop", "-m", "immediate")
                except RuntimeError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)
