"""Which database a read uses (SPEC §9, docs/SCALING.md): the one place that decides.

Everything uses the primary (`default`): writes, reads inside writes, the admin, commands and
migrations. A view handler marked `@reads_replica` reads from the streaming replica
(`DATABASE_REPLICA_URL`), unless

- no replica is configured;
- the replica is unreachable, not in recovery, or lags more than `REPLICA_MAX_LAG_SECONDS`
  (checked at most every `REPLICA_CHECK_SECONDS` per process, logged once per change of state);
- the user wrote something the replica has not replayed yet (read-your-writes): after a request
  that wrote, the primary's WAL insert position is kept in Redis for that user, with an expiry,
  so every process sees it; the user reads from the primary until the replica has replayed past it.

A replica that fails in the middle of a read is retried on the primary: never an error to the
client. `communication_get` retries a miss on the primary (`fall_back_to_primary`), since a UUID
may come from someone else's write the replica has not replayed yet.
"""

import functools
import logging
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from .errors import DATABASE_UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

REPLICA = "replica"
OK, LAGGING, UNREACHABLE = "ok", "lagging", "unreachable"

# The alias reads go to inside a `@reads_replica` handler; None elsewhere (the primary).
_reading: ContextVar[str | None] = ContextVar("reading_alias", default=None)


def replica_configured() -> bool:
    return REPLICA in connections.settings


class ReplicaRouter:
    """Reads follow `_reading`; writes and migrations stay on the primary."""

    def db_for_read(self, model, **hints):
        return _reading.get()

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the primary's rows: one database for relations

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA


# The replica's health, per process.


@dataclass(frozen=True)
class ReplicaState:
    state: str
    lag_seconds: float | None = None
    replay_lsn: int | None = None  # bytes, as `pg_lsn - '0/0'`
    detail: str = ""


class _ReplicaHealth:
    """The last check of the replica, refreshed at most every REPLICA_CHECK_SECONDS."""

    def __init__(self):
        self._lock = threading.Lock()
        self._current: ReplicaState | None = None
        self._checked_at = 0.0

    def current(self) -> ReplicaState:
        if self._fresh():
            return self._current
        # One thread checks; the others go on with the last answer meanwhile.
        if not self._lock.acquire(blocking=self._current is None):
            return self._current
        try:
            if not self._fresh():
                self._set(*self._check())
        finally:
            self._lock.release()
        return self._current

    def mark_unreachable(self, error: Exception) -> None:
        """A read failed on the replica: stop using it until the next check says otherwise."""
        self._set(ReplicaState(UNREACHABLE, detail=type(error).__name__), _describe(error))

    def _fresh(self) -> bool:
        return self._current is not None and time.monotonic() - self._checked_at < settings.REPLICA_CHECK_SECONDS

    def reset(self) -> None:
        """Forget the last check (tests; a new process starts this way)."""
        with self._lock:
            self._current, self._checked_at = None, 0.0

    def _set(self, new: ReplicaState, reason: str = "") -> None:
        old, self._current, self._checked_at = self._current, new, time.monotonic()
        if old is not None and old.state == new.state:
            return
        if new.state == OK:
            log.info("replica ok: reads go to the replica")
        elif new.state == LAGGING:
            lag = "unknown" if new.lag_seconds is None else f"{new.lag_seconds:.1f} s"
            log.warning(
                "replica lagging (%s, limit %s s): reads go to the primary", lag, settings.REPLICA_MAX_LAG_SECONDS
            )
        else:
            log.warning("replica unreachable (%s): reads go to the primary", reason or new.detail)

    def _check(self) -> tuple[ReplicaState, str]:
        """The replica's state, and for the log why it is unreachable (the state is public)."""
        # WAL is pending if the replica has not replayed what the primary has written. Asking the
        # primary (not the replica's own received position) also catches a replica cut off from it.
        primary_lsn = _primary_lsn()
        try:
            with connections[REPLICA].cursor() as cursor:
                cursor.execute(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn,"
                    " pg_last_wal_receive_lsn() - '0/0'::pg_lsn,"
                    " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
                )
                in_recovery, replay, receive, since_last_replayed = cursor.fetchone()
        except DatabaseError as error:
            _close_quietly(REPLICA)
            return ReplicaState(UNREACHABLE, detail=type(error).__name__), _describe(error)
        if not in_recovery:
            return ReplicaState(UNREACHABLE, detail="not in recovery"), "not a replica: pg_is_in_recovery() is false"
        replay = int(replay) if replay is not None else None
        reference = primary_lsn if primary_lsn is not None else (int(receive) if receive is not None else None)
        pending = replay is None or (reference is not None and replay < reference)
        if not pending:
            lag = 0.0
        elif since_last_replayed is None:
            lag = None  # WAL waiting and no transaction replayed since the replica started
        else:
            lag = max(0.0, float(since_last_replayed))
        if lag is None or lag > settings.REPLICA_MAX_LAG_SECONDS:
            return ReplicaState(LAGGING, lag_seconds=lag if lag is None else round(lag, 3), replay_lsn=replay), ""
        return ReplicaState(OK, lag_seconds=round(lag, 3), replay_lsn=replay), ""


HEALTH = _ReplicaHealth()


def _primary_lsn() -> int | None:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
            return int(cursor.fetchone()[0])
    except DatabaseError:
        return None


def _describe(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _close_quietly(alias: str) -> None:
    try:
        connections[alias].close()
    except DatabaseError:
        pass


# Read-your-writes: the last WAL position each user wrote, in Redis.


# Kept while it can matter: past it the replica is either caught up or lagging (reads on the primary).
def positions_ttl() -> int:
    return int(2 * (settings.REPLICA_MAX_LAG_SECONDS + settings.REPLICA_CHECK_SECONDS)) + 30


# Only ever raises the stored position (two writes of one user finishing in parallel), and
# renews the expiry. Positions are zero-padded decimals, so string order is numeric order.
_REMEMBER = """
local current = redis.call('GET', KEYS[1])
if (not current) or current < ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return redis.call('EXPIRE', KEYS[1], ARGV[2])
"""


class PositionsUnavailable(Exception):
    pass


class _WritePositions:
    """Redis, reached with short timeouts; after a failure it is left alone for a check interval."""

    def __init__(self):
        self._client: redis.Redis | None = None
        self._remember = None
        self._url = None
        self._failed_at: float | None = None

    def reset(self) -> None:
        self._client, self._remember, self._url, self._failed_at = None, None, None, None

    def remember(self, user_id: int, lsn: int) -> None:
        self._call(lambda client: self._remember(keys=[_key(user_id)], args=[f"{lsn:020d}", positions_ttl()]))

    def get(self, user_id: int) -> int | None:
        value = self._call(lambda client: client.get(_key(user_id)))
        return int(value) if value is not None else None

    def _call(self, operation):
        if self._failed_at is not None and time.monotonic() - self._failed_at < settings.REPLICA_CHECK_SECONDS:
            raise PositionsUnavailable("Redis failed a moment ago")
        try:
            result = operation(self._redis())
        except redis.RedisError as error:
            if self._failed_at is None:
                log.warning("Redis unreachable (%s): users' reads go to the primary", _describe(error))
            self._failed_at = time.monotonic()
            raise PositionsUnavailable(str(error)) from error
        if self._failed_at is not None:
            log.info("Redis reachable again: read-your-writes positions kept")
            self._failed_at = None
        return result

    def _redis(self) -> redis.Redis:
        if self._client is None or self._url != settings.REDIS_URL:
            self._url = settings.REDIS_URL
            self._client = redis.Redis.from_url(self._url, socket_connect_timeout=0.5, socket_timeout=0.5)
            self._remember = self._client.register_script(_REMEMBER)
        return self._client


POSITIONS = _WritePositions()


def _key(user_id: int) -> str:
    return f"communications:written-lsn:{user_id}"


def remember_write(user) -> None:
    """After `user`'s request wrote on the primary: their reads stay there until the replica catches up."""
    if user is None or not user.is_authenticated:
        return
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
            lsn = int(cursor.fetchone()[0])
        POSITIONS.remember(user.pk, lsn)
    except (DatabaseError, PositionsUnavailable):
        pass  # logged where it failed; the user's reads go to the primary while Redis is away


WRITES = {"INSERT", "UPDATE", "DELETE", "MERGE", "COPY"}


def _is_write(sql: str) -> bool:
    words = sql.lstrip().split(None, 1)
    return bool(words) and words[0].upper() in WRITES


class ReadYourWritesMiddleware:
    """Notices a request that wrote on the primary and remembers the position for its user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_configured():
            return self.get_response(request)
        wrote = False

        def notice(execute, sql, params, many, context):
            nonlocal wrote
            wrote = wrote or _is_write(sql)
            return execute(sql, params, many, context)

        with connections[DEFAULT_DB_ALIAS].execute_wrapper(notice):
            response = self.get_response(request)
        if wrote:
            remember_write(getattr(request, "user", None))
        return response


# Choosing the database for one read.


def read_alias(user) -> str:
    """The replica when it is healthy and has replayed the user's last write; else the primary."""
    if not replica_configured():
        return DEFAULT_DB_ALIAS
    state = HEALTH.current()
    if state.state != OK:
        return DEFAULT_DB_ALIAS
    if user is not None and user.is_authenticated:
        try:
            written = POSITIONS.get(user.pk)
        except PositionsUnavailable:
            return DEFAULT_DB_ALIAS  # cannot tell whether they wrote: the primary is always right
        if written is not None and (state.replay_lsn is None or state.replay_lsn < written):
            return DEFAULT_DB_ALIAS
    return REPLICA


def reads_replica(handler):
    """Marks a read-only view handler whose reads may be served by the replica."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        alias = read_alias(request.user)
        if alias == DEFAULT_DB_ALIAS:
            return handler(view, request, *args, **kwargs)
        token = _reading.set(alias)
        try:
            try:
                return handler(view, request, *args, **kwargs)
            except DATABASE_UNAVAILABLE_ERRORS as error:
                if _reading.get() != REPLICA:
                    raise
                HEALTH.mark_unreachable(error)
                _close_quietly(REPLICA)
                _reading.set(None)
                return handler(view, request, *args, **kwargs)  # read-only: safe to run again
        finally:
            _reading.reset(token)

    return wrapper


def fall_back_to_primary() -> bool:
    """Inside a replica read: switch the rest of it to the primary and say so (the caller retries)."""
    if _reading.get() != REPLICA:
        return False
    _reading.set(None)
    return True


def replica_report() -> dict:
    """The replica's part of /readyz: its state, never a reason to fail readiness."""
    if not replica_configured():
        return {}
    state = HEALTH.current()
    report = {"state": state.state, "lag_seconds": state.lag_seconds}
    if state.detail:
        report["detail"] = state.detail
    return {"replica": report}
