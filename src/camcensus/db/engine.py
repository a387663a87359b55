"""Open the platform database: SQLite (default) or PostgreSQL + PostGIS via ``DATABASE_URL``.

SQLite connections are set up on every connect: WAL journal, ``synchronous=FULL`` (an
acknowledged commit survives SIGKILL and power loss), a ``busy_timeout``, and
``foreign_keys=ON``. ``synchronous="NORMAL"`` (``connect(url, synchronous=...)`` or
``$CAMCENSUS_SQLITE_SYNCHRONOUS``) skips the fsync at each commit: under WAL an acknowledged
commit still survives a crash or SIGKILL of the server process, but not a power cut or an
operating-system crash (the last commits may be lost, the database stays consistent).

A transaction starts with ``BEGIN IMMEDIATE`` (the pysqlite recipe of the
SQLAlchemy docs: the driver's own transaction handling is switched off and the ``begin`` event
emits the statement), so a transaction holds the write lock from its first statement and a
select-then-insert (task assignment) cannot race another writer. Inside one process, writers
also queue on a lock instead of polling SQLite's busy handler, which keeps latency flat under
hundreds of concurrent requests. Sessions made with ``session_factory(engine, readonly=True)``
start with a plain deferred ``BEGIN`` and never block writers.

:class:`GroupCommit` commits the write jobs that queued together (group commit): one fsync
for many requests, each acknowledged only once the commit that holds it returned (a job that
raises rolls the batch back and the other jobs run again without it), so ``synchronous=FULL``
keeps its guarantee while the write lock is held for one fsync per batch instead of one per
request. The web app's jobs run in the event loop's own thread (:meth:`GroupCommit.run`), on a
connection kept for it, which never waits for the write lock: when another thread or process
holds it, the batch goes to a writer thread (:meth:`GroupCommit.submit`) that waits.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from camcensus._errors import OptionError

__all__ = [
    "DEFAULT_URL",
    "GROUP_COMMIT_MAX",
    "SYNCHRONOUS_ENV",
    "SYNCHRONOUS_LEVELS",
    "GroupCommit",
    "WriterBusyError",
    "connect",
    "session_factory",
]

#: The database used when neither ``url`` nor ``$DATABASE_URL`` is given.
DEFAULT_URL = "sqlite:///camcensus.db"
#: The environment variable choosing SQLite's ``synchronous`` level (``FULL`` or ``NORMAL``).
SYNCHRONOUS_ENV = "CAMCENSUS_SQLITE_SYNCHRONOUS"
#: SQLite ``synchronous`` levels :func:`connect` accepts; the first is the default.
SYNCHRONOUS_LEVELS = ("FULL", "NORMAL")
#: How long a SQLite writer waits for the write lock before giving up (ms).
BUSY_TIMEOUT_MS = 30_000
_READONLY = "camcensus_readonly"
_NOWAIT = "camcensus_nowait"
#: Most write jobs one group commit holds.
GROUP_COMMIT_MAX = 64
#: A writer thread with nothing to do for this long ends (a new job starts another).
_WRITER_IDLE_S = 2.0
T = TypeVar("T")
_F = TypeVar("_F")


def connect(
    url: str | None = None, *, echo: bool = False, synchronous: str | None = None
) -> Engine:
    """Return an engine for the platform database.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``sqlite:///path.db`` or ``postgresql+psycopg://user@host/db``);
        default ``$DATABASE_URL``, else ``sqlite:///camcensus.db``.
    echo
        Log every statement (debugging).
    synchronous
        SQLite only: ``"FULL"`` (default; a commit is on disk before it returns: it survives
        SIGKILL and power loss) or ``"NORMAL"`` (under WAL: survives SIGKILL of the server, not
        a power cut; about 2 ms less per commit). Default ``$CAMCENSUS_SQLITE_SYNCHRONOUS``,
        else ``"FULL"``.

    Returns
    -------
    sqlalchemy.Engine
        The engine; run :func:`camcensus.db.upgrade` on it once before use.
    """
    url = url or os.environ.get("DATABASE_URL") or DEFAULT_URL
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    level = (synchronous or os.environ.get(SYNCHRONOUS_ENV) or SYNCHRONOUS_LEVELS[0]).upper()
    if level not in SYNCHRONOUS_LEVELS:
        raise OptionError(
            f"synchronous={level!r} (or ${SYNCHRONOUS_ENV}): expected one of "
            f"{', '.join(SYNCHRONOUS_LEVELS)}; FULL keeps acknowledged commits through a power "
            "cut, NORMAL only through a crash of the server process."
        )
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo, synchronous=level)
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=20, max_overflow=40)


def session_factory(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """Return a ``sessionmaker`` bound to ``engine``.

    ``readonly=True`` makes sessions whose SQLite transactions start deferred (they read a
    snapshot and never take the write lock); they must not write.
    """
    bind = engine.execution_options(**{_READONLY: True}) if readonly else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def _sqlite_engine(url: str, *, echo: bool, synchronous: str) -> Engine:
    memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
    kwargs: dict[str, Any] = {"echo": echo, "connect_args": {"check_same_thread": False}}
    if not memory:
        kwargs.update(pool_size=16, max_overflow=64, pool_timeout=60)
    engine = create_engine(url, **kwargs)
    write_lock = threading.Lock()
    # ids of the DBAPI connections whose transaction holds ``write_lock``
    holders: set[int] = set()
    holders_guard = threading.Lock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Turn off pysqlite's own BEGIN handling; the "begin" event below emits ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    def _key(connection: Any) -> int:
        # The dialect's commit/rollback get the pool's proxy, its close gets the raw sqlite3
        # connection: both name the same raw connection.
        return id(getattr(connection, "dbapi_connection", connection))

    def _release(dbapi_connection: Any) -> None:
        key = _key(dbapi_connection)
        with holders_guard:
            held = key in holders
            holders.discard(key)
        if held:
            write_lock.release()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(_READONLY):
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_connection = conn.connection.dbapi_connection
        if options.get(_NOWAIT):
            # The event loop's writer (GroupCommit.run): never wait for the write lock.
            if not write_lock.acquire(blocking=False):
                raise WriterBusyError("another writer of this process holds the write lock")
            with holders_guard:
                holders.add(_key(dbapi_connection))
            try:
                raw: Any = dbapi_connection
                raw.execute("BEGIN IMMEDIATE")  # its busy_timeout is 0
            except sqlite3.OperationalError as exc:
                _release(dbapi_connection)
                raise WriterBusyError(f"another process holds the write lock ({exc})") from exc
            return
        # Queue this process's writers on a lock (no polling); after the busy timeout fall
        # back to SQLite's own busy handler.
        if write_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            with holders_guard:
                holders.add(_key(dbapi_connection))
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(dbapi_connection)
            raise

    # The lock is released once COMMIT or ROLLBACK has reached the database (the engine's
    # "commit"/"rollback" events fire before it), so the next writer never meets a busy file.
    dialect = engine.dialect
    do_commit = dialect.do_commit
    do_rollback = dialect.do_rollback

    def _do_commit(dbapi_connection: Any) -> None:
        try:
            do_commit(dbapi_connection)
        finally:
            _release(dbapi_connection)

    def _do_rollback(dbapi_connection: Any) -> None:
        try:
            do_rollback(dbapi_connection)
        finally:
            _release(dbapi_connection)

    def _do_close(dbapi_connection: Any) -> None:
        try:
            do_close(dbapi_connection)
        finally:
            _release(dbapi_connection)

    do_close = dialect.do_close
    dialect.do_commit = _do_commit  # type: ignore[method-assign]
    dialect.do_rollback = _do_rollback  # type: ignore[method-assign]
    dialect.do_close = _do_close  # type: ignore[method-assign]
    return engine


class WriterBusyError(RuntimeError):
    """The event loop's writer found the write lock taken (by another thread or process); the
    batch goes to the writer thread, which waits for it."""


class GroupCommit:
    """Run write jobs on one writer thread; commit the jobs waiting at once together.

    A job is a function of a write session (from ``sessions``) that must not commit and may
    run more than once (only its last run is kept). The writer takes the jobs queued while it
    was busy (at most ``max_batch``), runs them in one transaction, commits once, and only
    then resolves the futures: a job's result is acknowledged only once the commit that holds
    it is durable. A job that raises gets its error, the transaction is rolled back and the
    batch's other jobs run again in a new one (cheaper than a savepoint around every job,
    which took about a seventh of the writer's time on the platform's hot path). If the
    commit fails, every job of the batch gets the error. The thread starts at the first job
    and ends after a short idle time.

    Parameters
    ----------
    sessions
        The write session factory (:func:`session_factory`).
    max_batch
        Most jobs one commit holds.
    """

    def __init__(self, sessions: sessionmaker[Session], *, max_batch: int = GROUP_COMMIT_MAX):
        self._sessions = sessions
        self._max_batch = max(1, int(max_batch))
        self._jobs: deque[tuple[Callable[[Session], Any], Future[Any]]] = deque()
        self._cond = threading.Condition()
        self._running = False
        # run(): the event loop's jobs, whether a flush is scheduled, its own connection
        self._pending: deque[tuple[Callable[[Session], Any], asyncio.Future[Any]]] = deque()
        self._scheduled = False
        self._loop_connection: Connection | None = None
        #: Commits made and jobs committed (for benchmarks and tests).
        self.commits = 0
        self.committed = 0

    def submit(self, job: Callable[[Session], T]) -> Future[T]:
        """Queue ``job``; the future resolves after the commit that holds it."""
        future: Future[T] = Future()
        with self._cond:
            self._jobs.append((job, future))
            if not self._running:
                self._running = True
                threading.Thread(target=self._loop, name="camcensus-writer", daemon=True).start()
            else:
                self._cond.notify()
        return future

    async def run(self, job: Callable[[Session], T]) -> T:
        """Run ``job`` in the running event loop's next group commit; return its result once
        the commit that holds it is durable (or raise its error).

        The jobs that arrive while the event loop is busy are run together in the loop's own
        thread, on a connection kept for it, when the loop is next free: no thread hand-over,
        whose cost (the interpreter lock going back and forth between the loop and a writer
        thread, waking each other) was most of a small batch's. The loop never waits for the
        write lock: if another thread or process holds it (:class:`WriterBusyError`), the batch
        goes to the writer thread (:meth:`submit`), which waits, and the loop goes on
        serving.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((job, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_pending, loop)
        return await future

    def _flush_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        while self._pending:
            n = min(len(self._pending), self._max_batch)
            jobs = [self._pending.popleft() for _ in range(n)]
            self._run_in_loop(loop, [(j, f) for j, f in jobs if not f.done()])

    def _loop_session(self) -> Session:
        """A session on the event loop's own connection, its transaction begun (never waiting
        for the write lock: :class:`WriterBusyError`)."""
        if self._loop_connection is None or self._loop_connection.closed:
            bind = self._sessions.kw["bind"]
            connection = bind.connect().execution_options(**{_NOWAIT: True})
            raw: Any = connection.connection.dbapi_connection
            raw.execute("PRAGMA busy_timeout=0")
            self._loop_connection = connection
        session = self._sessions(bind=self._loop_connection)
        try:
            session.connection()  # BEGIN IMMEDIATE, or WriterBusyError
        except BaseException:
            session.close()
            self._loop_connection.rollback()
            raise
        return session

    def _run_in_loop(
        self,
        loop: asyncio.AbstractEventLoop,
        jobs: list[tuple[Callable[[Session], Any], asyncio.Future[Any]]],
    ) -> None:
        try:
            self._commit(jobs, self._loop_session)
        except WriterBusyError:  # the jobs still waiting go to the writer thread
            for job, future in jobs:
                self._to_thread(loop, job, future)

    def _to_thread(
        self,
        loop: asyncio.AbstractEventLoop,
        job: Callable[[Session], Any],
        future: asyncio.Future[Any],
    ) -> None:
        """Hand ``job`` to the writer thread; resolve ``future`` in ``loop`` when it is done."""

        def settle(done: Future[Any]) -> None:
            if future.done():
                return
            error = done.exception()
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result())

        self.submit(job).add_done_callback(lambda done: loop.call_soon_threadsafe(settle, done))

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._jobs:
                    self._cond.wait(timeout=_WRITER_IDLE_S)
                if not self._jobs:
                    self._running = False
                    return
                n = min(len(self._jobs), self._max_batch)
                batch = [self._jobs.popleft() for _ in range(n)]
            self._run(batch)

    def _run(self, batch: list[tuple[Callable[[Session], Any], Future[Any]]]) -> None:
        jobs = [(job, future) for job, future in batch if future.set_running_or_notify_cancel()]
        self._commit(jobs, lambda: None)

    def _commit(
        self,
        jobs: list[tuple[Callable[[Session], Any], Any]],
        begin: Callable[[], Session | None],
    ) -> None:
        """Run ``jobs`` in one transaction and commit; resolve their futures (concurrent or
        asyncio: a future already done, e.g. cancelled, is left as it is).

        ``begin`` gives the session (None: a new one of ``sessions``); its
        :class:`WriterBusyError` leaves ``jobs`` to the caller: those not yet answered.
        """
        while jobs:
            session = begin()
            try:
                done, failed = self._attempt(jobs, session)
            except BaseException as exc:  # the commit (or the rollback) failed: all fail
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
                jobs.clear()
                return
            if failed is None:
                self.commits += 1
                self.committed += len(done)
                for future, result in done:
                    if not future.done():
                        future.set_result(result)
                jobs.clear()
                return
            # A job raised: the whole transaction was rolled back; that job gets its error
            # and the others run again (nothing of theirs was acknowledged).
            index, error = failed
            if not jobs[index][1].done():
                jobs[index][1].set_exception(error)
            del jobs[index]

    def _attempt(
        self, jobs: list[tuple[Callable[[Session], Any], _F]], session: Session | None = None
    ) -> tuple[list[tuple[_F, Any]], tuple[int, BaseException] | None]:
        """Run ``jobs`` in one transaction and commit it; at the first job that raises, roll
        everything back and return that job's index and error. ``session``: the event loop's
        (its transaction already begun), else a new one of ``sessions``."""
        done: list[tuple[_F, Any]] = []
        with session if session is not None else self._sessions() as session:
            for index, (job, future) in enumerate(jobs):
                try:
                    result = job(session)
                except Exception as exc:  # the job's own error
                    session.rollback()
                    return [], (index, exc)
                done.append((future, result))
            session.commit()
        return done, None
