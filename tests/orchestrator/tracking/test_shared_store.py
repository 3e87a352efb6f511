"""One tracking store, many processes; output folders checked before anything starts.

Real processes against real sqlite files: two sweeps started at the same moment on one new store, an
old-schema store, output folders that cannot be written (below a regular file, which stops root too).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sweep.cli import _output_folders, parse_args
from orchestrator.tracking import store as tracking_store
from orchestrator.tracking.store import StoreError, check_writable, prepare_store
from tests.orchestrator.conftest import run_sweep
from tests.orchestrator.sweep.test_reliability import Store, assert_clean_history
from tests.orchestrator.sweep.test_sweep_e2e import write_sweep


def _migrations() -> tuple[str, str]:
    """The installed MLflow's newest schema revision and the one before it (from its migrations folder)."""
    import mlflow
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(Path(mlflow.__file__).parent / "store" / "db_migrations"))
    head = script.get_current_head()
    return head, str(script.get_revision(head).down_revision)


def _revision(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return con.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def _set_revision(db: Path, revision: str, drop_table: bool = False) -> None:
    """Makes a current store look older: its recorded revision and, optionally, one table fewer."""
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        if drop_table:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            con.execute(f'DROP TABLE "{sorted(t for t in tables if not t.startswith("alembic"))[-1]}"')
    con.close()


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the installed MLflow's schema, created once (its migrations take seconds); tests copy it."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    prepare_store(f"sqlite:///{db}")
    return db


@pytest.fixture
def store_copy(template_store: Path, tmp_path: Path) -> Path:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(template_store, db)
    return db


class _CountCreations(logging.Handler):
    """Counts MLflow's "Creating initial MLflow database tables" log records: one per schema creation."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "Creating initial MLflow database tables" in record.getMessage()


# ---- prepare_store ------------------------------------------------------------------------------------
def _prepare_in_child(uri: str, start: Any, results: Any) -> None:
    """In a forked process: :func:`prepare_store` at the barrier; puts (error or "", creations) on results.

    MLflow's creation log is left on here: it is how the test counts creations."""
    tracking_store._quiet_schema_creation = contextlib.nullcontext
    handler = _CountCreations()
    logging.getLogger("mlflow.store.db.utils").addHandler(handler)
    start.wait()
    try:
        prepare_store(uri)
        results.put(("", handler.count))
    except Exception as exc:  # noqa: BLE001 - reported to the test, which shows every process's failure
        results.put((f"{type(exc).__name__}: {exc}", handler.count))


def test_prepare_store__processes_at_once_on_a_new_file_create_it_once(
    tmp_path: Path, template_store: Path
) -> None:
    """Processes, not threads: MLflow builds one store at a time within a process, so threads never race.
    Forked after mlflow is imported (``template_store``), the processes reach the store together."""
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    fork = multiprocessing.get_context("fork")
    start, results = fork.Barrier(4), fork.Queue()
    children = [fork.Process(target=_prepare_in_child, args=(uri, start, results)) for _ in range(4)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
    assert [error for error, _ in outcomes] == [""] * 4, outcomes
    assert sum(count for _, count in outcomes) == 1  # one process created the schema; three opened it
    assert _revision(db) == _migrations()[0]
    assert [e.name for e in MlflowClient(uri).search_experiments()] == ["Default"]
    assert (tmp_path / "mlflow.db.lock").is_file()


def test_prepare_store__old_schema_is_refused_and_left_as_it_was(store_copy: Path) -> None:
    head, older = _migrations()
    # One table fewer, as in a store written by an older MLflow: opening that makes MLflow migrate it.
    _set_revision(store_copy, older, drop_table=True)
    before = hashlib.sha256(store_copy.read_bytes()).hexdigest()
    uri = f"sqlite:///{store_copy}"
    with pytest.raises(StoreError) as err:
        prepare_store(uri)
    message = str(err.value)
    assert f"mlflow db upgrade {uri}" in message and older in message and "\n" not in message
    assert hashlib.sha256(store_copy.read_bytes()).hexdigest() == before


def test_prepare_store__schema_of_a_newer_mlflow_says_upgrade_mlflow(store_copy: Path) -> None:
    _set_revision(store_copy, "0123456789ab")
    with pytest.raises(StoreError, match="newer MLflow .*0123456789ab.*pip install -U mlflow"):
        prepare_store(f"sqlite:///{store_copy}")


def test_prepare_store__a_file_that_is_no_database_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database") as err:
        prepare_store(f"sqlite:///{db}")
    assert "\n" not in str(err.value)


def test_prepare_store__database_is_locked_is_retried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    attempts = []

    def locked_twice(uri: str) -> None:
        attempts.append(uri)
        if len(attempts) <= 2:
            raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(tracking_store, "_open_store", locked_twice)
    monkeypatch.setattr(tracking_store, "LOCKED_BACKOFF_S", (0.01, 0.01))
    prepare_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(attempts) == 3
    attempts.clear()
    monkeypatch.setattr(tracking_store, "LOCKED_BACKOFF_S", (0.01,))
    with pytest.raises(StoreError, match="OperationalError: database is locked"):
        prepare_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(attempts) == 2


def test_prepare_store__other_stores_and_a_missing_file_for_a_reader_are_left_alone(tmp_path: Path) -> None:
    for uri in ("http://127.0.0.1:1", f"file://{tmp_path}/mlruns", "sqlite:///:memory:"):
        prepare_store(uri)
    prepare_store(f"sqlite:///{tmp_path / 'mlflow.db'}", create=False)
    assert list(tmp_path.iterdir()) == []


# ---- check_writable -----------------------------------------------------------------------------------
def test_check_writable__creates_the_folder_and_leaves_no_probe(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    check_writable(folder, "--report-dir")
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_check_writable__below_a_file_names_the_flag_and_path(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(StoreError) as err:
        check_writable(tmp_path / "notes.txt" / "sub", "--storage-path")
    assert str(err.value).startswith(f"--storage-path {tmp_path / 'notes.txt' / 'sub'}: cannot create")


def test_check_writable__a_full_disk_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=12_000_000))
    with pytest.raises(StoreError, match=rf"--report-dir {tmp_path}: only 12 MB free .* at least 100 MB"):
        check_writable(tmp_path, "--report-dir")


def test_sweep_output_folders__no_report_dir_with_no_report(tmp_path: Path) -> None:
    args = parse_args(["s.yaml", "--no-report", "--report-dir", "x"])
    assert list(_output_folders(args, tmp_path)) == ["--storage-path"]
    assert list(_output_folders(parse_args(["s.yaml"]), tmp_path)) == ["--storage-path", "--report-dir"]


# ---- the command lines --------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--storage-path", "--report-dir", "--tracking-uri"])
def test_sweep_cli__unwritable_output_exits_2_before_anything_starts(
    tmp_path: Path, proc_env: dict[str, str], flag: str
) -> None:
    sweep = write_sweep(tmp_path, "unwritable", [0.4], [0])
    (tmp_path / "notes.txt").write_text("")
    bad = tmp_path / "notes.txt" / "sub"
    value = f"sqlite:///{bad / 'mlflow.db'}" if flag == "--tracking-uri" else str(bad)
    proc = run_sweep([str(sweep), "--smoke", flag, value], cwd=tmp_path, env=proc_env, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"{flag} " in proc.stderr and str(bad) in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "mlflow.db").exists() and not list(tmp_path.glob("ray_results/*"))


def test_sweep_cli__dry_run_creates_nothing(tmp_path: Path, proc_env: dict[str, str]) -> None:
    sweep = write_sweep(tmp_path, "dry", [0.4], [0])
    proc = run_sweep([str(sweep), "--smoke", "--dry-run"], cwd=tmp_path, env=proc_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dry.yaml"]


@pytest.mark.slow
def test_cli__old_schema_store_exits_2_with_the_upgrade_command(
    store_copy: Path, tmp_path: Path, proc_env: dict[str, str]
) -> None:
    head, older = _migrations()
    _set_revision(store_copy, older)
    uri = f"sqlite:///{store_copy}"
    sweep = write_sweep(tmp_path, "old_store", [0.4], [0])
    commands = [
        (
            [sys.executable, "-m", "orchestrator.sweep", str(sweep), "--smoke", "--tracking-uri", uri],
            "error: ",
        ),
        (
            [sys.executable, "-m", "orchestrator.report", "--experiment", "x", "--tracking-uri", uri],
            "orchestrator.report: ",
        ),
    ]
    for command, prefix in commands:
        proc = subprocess.run(
            command, cwd=tmp_path, env=proc_env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(prefix), proc.stderr
        assert f"mlflow db upgrade {uri}" in lines[0]
    assert _revision(store_copy) == older  # never migrated
    assert not list(tmp_path.glob("ray_results/*"))


@pytest.mark.slow
def test_two_sweeps_started_at_once_share_one_new_sqlite_store(
    tmp_path: Path, proc_env: dict[str, str]
) -> None:
    """The issue's case: two people start sweeps in the same fresh folder, into its default ./mlflow.db."""
    names = ["shared_a", "shared_b"]
    sweeps = [write_sweep(tmp_path, name, [0.3, 0.5], [0], epochs=2, concurrency=1) for name in names]
    drivers = [
        subprocess.Popen(
            [sys.executable, "-m", "orchestrator.sweep", str(sweep), "--smoke"],
            cwd=tmp_path,
            env=proc_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for sweep in sweeps
    ]
    started = time.monotonic()
    outputs = [driver.communicate(timeout=300) for driver in drivers]
    elapsed = time.monotonic() - started
    for driver, (out, err) in zip(drivers, outputs, strict=True):
        assert driver.returncode == 0, out[-3000:] + err[-3000:]
        assert "Traceback" not in err and "database is locked" not in out + err, err[-3000:]
        assert "Creating initial MLflow database tables" not in err  # a creation is quiet
    for name, (out, _) in zip(names, outputs, strict=True):
        store = Store(tmp_path / "mlflow.db", name)
        trials = store.runs()
        assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
        assert sorted(r.data.params["mask.ratio"] for r in trials) == ["0.3", "0.5"]  # each exactly once
        for run in trials:
            assert_clean_history(store, run, 2)
        report = next(line for line in out.splitlines() if line.startswith("report: "))[8:]
        assert Path(report, "report.md").is_file(), out[-2000:]
    print(f"two sweeps on one new store: {elapsed:.0f} s")


def test_prepare_outputs__creates_a_new_store_on_a_thread_and_checks_an_existing_one_at_once(
    store_copy: Path, tmp_path: Path
) -> None:
    """The sweep overlaps a new store's migrations with Ray's start; an existing store is checked before."""
    new_db = tmp_path / "new" / "mlflow.db"
    new_db.parent.mkdir()
    creation = tracking_store.prepare_outputs(f"sqlite:///{new_db}", {}, background_creation=True)
    assert isinstance(creation, tracking_store.StoreCreation)
    creation.wait()
    assert _revision(new_db) == _migrations()[0]  # the whole schema, by the time wait() returns
    existing = tracking_store.prepare_outputs(f"sqlite:///{store_copy}", {}, background_creation=True)
    assert existing is None
    _set_revision(store_copy, _migrations()[1])
    with pytest.raises(StoreError, match="mlflow db upgrade"):  # refused here, not on the thread
        tracking_store.prepare_outputs(f"sqlite:///{store_copy}", {}, background_creation=True)


def test_store_creation__a_failure_on_the_thread_is_one_store_error_at_wait(monkeypatch, tmp_path) -> None:
    def broken(uri: str, *, create: bool = True) -> None:
        raise OSError("disk on fire\nsecond line")

    monkeypatch.setattr(tracking_store, "prepare_store", broken)
    creation = tracking_store.StoreCreation(f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(StoreError) as info:
        creation.wait()
    message = str(info.value)
    assert "disk on fire" in message and "\n" not in message
