"""Getting the tracking store and the output folders ready before Ray starts.

Two sweeps started at the same moment against a new sqlite file both let MLflow create its schema, and one
dies in alembic (``Online migration expected to match one row ...``). :func:`prepare_store` creates a new
sqlite store once, under an exclusive ``flock`` on ``<db>.lock`` beside the database, before any other
process of this project touches it; trial workers then only ever open an existing store. It also refuses a
store whose schema is older than the installed MLflow instead of letting MLflow migrate it: opening a store
that lacks some of the current tables makes MLflow run the migrations on the spot.

:func:`check_writable` finds an unwritable or full output folder before a sweep spends minutes training.

At module level this imports only the standard library and :mod:`orchestrator.tracking` (which does the
same); mlflow and alembic are imported by the functions that open a store.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

from orchestrator.tracking.runs import one_line

MIN_FREE_MB = 100  # free space (10**6 bytes) an output folder must have: checkpoints, metrics, plots
LOCK_TIMEOUT_S = 300.0  # the longest a process waits while another creates or checks the same store
LOCK_POLL_S = 0.1
# Pauses between attempts when sqlite answers "database is locked" while the store is created: a process
# outside this project (``mlflow ui``, an older checkout) may hold the database for a moment.
LOCKED_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)


class StoreError(Exception):
    """The tracking store or an output folder cannot be used; the message is one line that names it."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (query string dropped), or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri[len("sqlite:///") :].split("?", 1)[0]
    if rest in ("", ":memory:"):
        return None
    return Path(rest)


def tracking_folder(uri: str) -> Path | None:
    """The local folder a tracking store writes to: a sqlite file's folder, or a file store's own folder;
    None for servers and other databases."""
    db = sqlite_path(uri)
    if db is not None:
        return db.parent
    if uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path))
    return None


def check_writable(path: Path, what: str) -> None:
    """Creates ``path`` if it is missing (as the sweep would), writes and removes a probe file in it, and
    checks that it has at least :data:`MIN_FREE_MB` MB free.

    Args:
        path: The folder.
        what: How the user named it, e.g. ``--storage-path``; the message starts with it.

    Raises:
        StoreError: the folder cannot be created or written, or has too little free space.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{what} {path}: cannot create the folder ({exc.strerror or exc})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".jepa-write-probe-", dir=path)
        try:
            os.write(fd, b"probe\n")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise StoreError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from None
    free_mb = shutil.disk_usage(path).free / 1e6
    if free_mb < MIN_FREE_MB:
        raise StoreError(
            f"{what} {path}: only {free_mb:.0f} MB free on its disk; at least {MIN_FREE_MB} MB are needed"
        )


def prepare_store(uri: str, *, create: bool = True) -> None:
    """Makes a sqlite tracking store ready for many processes at once; any other store is left alone.

    Under an exclusive lock on ``<db>.lock``: an existing store whose schema revision is not the installed
    MLflow's is refused; otherwise the store is opened through MLflow's public client, which creates the
    schema of a new (or empty) file. sqlite's transient "database is locked" is retried with
    :data:`LOCKED_BACKOFF_S`. File stores and servers need nothing here (a server's reachability is checked
    by :func:`orchestrator.tracking.runs.unreachable`).

    Args:
        uri: An absolute tracking URI, as :func:`orchestrator.tracking.runs.resolve_tracking_uri` returns it.
        create: False leaves a missing database file missing (a reader reports that in its own words).

    Raises:
        StoreError: an old or newer schema (the message gives the ``mlflow db upgrade`` command for an old
            one), a file that is not an MLflow database, a lock held too long, or MLflow failing to open it.
    """
    db = sqlite_path(uri)
    if db is None or (not create and not db.exists()):
        return
    with _store_lock(db), _quiet_schema_creation():
        revision = _schema_revision(db)
        if revision is not None:
            _check_revision(uri, db, revision)
        _open_with_retries(uri, db)


@contextmanager
def _quiet_schema_creation() -> Iterator[None]:
    """Drops MLflow's INFO lines about creating a schema ("Creating initial MLflow database tables...") for
    the duration: a command's stderr holds warnings and errors, and an error must stay its only line."""
    logger = logging.getLogger("mlflow.store.db.utils")
    previous = logger.level
    logger.setLevel(max(previous, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextmanager
def _store_lock(db: Path) -> Iterator[None]:
    """Holds an exclusive ``flock`` on ``<db>.lock``, polling up to :data:`LOCK_TIMEOUT_S`.

    The lock file is never deleted: removing it while another process waits on it would let a third one lock
    a new file of the same name. Read-only access is enough for ``flock``, so users sharing a folder share
    the file. Where the lock file cannot be created but the database exists (a read-only folder), nobody can
    create a store there, so the check goes on unlocked.
    """
    lock = db.with_name(f"{db.name}.lock")
    fd: int | None
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as exc:
        if not db.is_file():
            raise StoreError(f"cannot create the lock file {lock} ({exc.strerror or exc})") from None
        fd = None
    if fd is None:
        yield
        return
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{lock}: another process has held this lock for over {LOCK_TIMEOUT_S:.0f} s; "
                        "is a process creating the MLflow store stuck?"
                    ) from None
                time.sleep(LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock


def _schema_revision(db: Path) -> str | None:
    """The alembic revision recorded in the database, or None when it holds no MLflow schema yet (a missing
    or empty file, or a creation that never got as far as recording its revision)."""
    if not db.is_file() or db.stat().st_size == 0:
        return None
    try:
        # Read-only, and with the standard library: opening it through MLflow could already migrate it.
        with closing(sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True, timeout=30)) as con:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables:
                return None
            rows = con.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{db}: not a usable SQLite database ({exc})") from None
    return str(rows[0][0]) if len(rows) == 1 else None


def _check_revision(uri: str, db: Path, revision: str) -> None:
    """Raises StoreError unless ``revision`` is the head of the installed MLflow's migrations."""
    import mlflow
    from alembic.script import ScriptDirectory

    # The migration scripts `mlflow db upgrade` runs; alembic's public API reads their revision graph.
    script = ScriptDirectory(str(Path(mlflow.__file__).parent / "store" / "db_migrations"))
    head = script.get_current_head()
    if revision == head:
        return
    version = importlib.metadata.version("mlflow")
    if revision in {r.revision for r in script.walk_revisions()}:
        raise StoreError(
            _upgrade_message(uri, db, f"schema revision {revision}, MLflow {version} uses {head}")
        )
    raise StoreError(
        f"the MLflow store {db} was written by a newer MLflow (schema revision {revision} is unknown to "
        f"MLflow {version}): upgrade mlflow here (pip install -U mlflow) to use it"
    )


def _upgrade_message(uri: str, db: Path, detail: str) -> str:
    return (
        f"the MLflow store {db} has an older schema than the installed MLflow ({detail}); it is not migrated "
        f"automatically: back it up, then run: mlflow db upgrade {uri}"
    )


def _open_store(uri: str) -> None:
    """Opens the store as every process of a sweep will: MLflow creates a new store's schema here."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


def _open_with_retries(uri: str, db: Path) -> None:
    """:func:`_open_store`, retried on "database is locked"; every failure becomes a one-line StoreError."""
    for pause in (*LOCKED_BACKOFF_S, None):
        try:
            _open_store(uri)
            return
        # Any failure to open the store (sqlalchemy, sqlite, alembic, MlflowException) is the user's store,
        # not a bug here: it ends in one line, never a traceback.
        except Exception as exc:  # noqa: BLE001
            message = str(getattr(exc, "message", None) or exc)
            if "database is locked" in message and pause is not None:
                time.sleep(pause)
                continue
            if "out-of-date database schema" in message:  # MLflow's own check, should ours ever miss one
                raise StoreError(_upgrade_message(uri, db, one_line(message, 300))) from None
            raise StoreError(
                f"cannot open the MLflow store {db}: {type(exc).__name__}: {one_line(message, 300)}"
            ) from None


class StoreCreation:
    """:func:`prepare_store` of a new sqlite store on a thread: the schema (seconds of MLflow migrations) is
    created while the caller starts other work; :meth:`wait` joins it and raises its one-line error.

    Only a new store is created this way. An existing one is checked before anything starts, so that an old
    schema is refused before any other output (see :func:`prepare_outputs`).
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._error: StoreError | None = None
        self._thread = threading.Thread(target=self._create, name="mlflow-store-creation", daemon=True)
        self._thread.start()

    def _create(self) -> None:
        try:
            prepare_store(self.uri)
        except StoreError as exc:
            self._error = exc
        except Exception as exc:  # noqa: BLE001 - reported by wait() in one line, as prepare_store's are
            self._error = StoreError(f"cannot create the MLflow store {self.uri}: {one_line(exc, 300)}")

    def wait(self) -> None:
        """Blocks until the store is ready. Raises StoreError: why it could not be created."""
        self._thread.join()
        if self._error is not None:
            raise self._error


def prepare_outputs(
    uri: str,
    folders: Mapping[str, str | Path],
    *,
    tracking_label: str = "tracking URI",
    background_creation: bool = False,
) -> StoreCreation | None:
    """Every output check a command needs before it starts work: :func:`check_writable` on each folder, then
    on the tracking store's local folder (if any), then :func:`prepare_store`.

    Args:
        uri: The resolved tracking URI.
        folders: Flag -> folder, e.g. ``{"--report-dir": "reports"}``.
        tracking_label: How the message names the tracking URI's origin, e.g. ``--tracking-uri``.
        background_creation: A new sqlite store is created on a thread (:class:`StoreCreation`, returned;
            the caller must ``wait()`` for it before using the store). An existing store is still checked
            here, and None returned.

    Raises:
        StoreError: the first problem found, in one line naming the folder and its flag.
    """
    for what, folder in folders.items():
        check_writable(Path(folder), what)
    local = tracking_folder(uri)
    if local is not None:
        check_writable(local, f"{tracking_label} {uri}: folder")
    db = sqlite_path(uri)
    if background_creation and db is not None and _schema_revision(db) is None:
        return StoreCreation(uri)
    prepare_store(uri)
    return None
