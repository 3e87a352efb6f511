"""Real components for the orchestrator's end-to-end tests: Ray clusters and MLflow servers on loopback.

Every process a test starts carries a unique ``JEPA_TEST_MARKER`` in its environment (Ray passes its own
environment on to the processes it spawns), and teardown ends exactly those processes by pid. ``ray stop``
would also end every other Ray cluster on the machine, which on a shared machine belongs to someone else.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def marked_pids(marker: str) -> list[int]:
    """Processes whose environment holds this test's marker (Linux /proc)."""
    needle = f"JEPA_TEST_MARKER={marker}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _with_descendants(pids: list[int]) -> set[int]:
    """``pids`` and every process below them (Ray's agents inherit a parent, not the environment)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            ppid = (
                int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if entry.name.isdigit()
                else None
            )
        except (OSError, IndexError, ValueError):
            continue
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def end_processes(marker: str, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``, to every process carrying ``marker`` and their descendants."""
    pids = _with_descendants(marked_pids(marker))  # before any dies: orphans lose their parent link
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        pids = {p for p in pids if _alive(p)}
        if not pids:
            return


@pytest.fixture
def proc_env() -> Iterator[dict[str, str]]:
    """Environment for every process a test starts; whatever is left of them is ended afterwards."""
    marker = secrets.token_hex(8)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "JEPA_TEST_MARKER": marker,
        "PYTHONUNBUFFERED": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    yield env
    end_processes(marker)


def run_sweep(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.sweep", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def mlflow_server(proc_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Starts ``mlflow server`` on a sqlite file, on 127.0.0.1 and a free port; returns its URL."""
    servers: list[subprocess.Popen] = []

    def start(db: Path) -> str:
        port = free_port()
        # The job runner (huey) is for GenAI features; it only slows the start and outlives a killed server.
        env = {**proc_env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        log = (tmp_path / f"mlflow_server_{port}.log").open("w")
        proc = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{db}",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--artifacts-destination",
                str(tmp_path / "mlartifacts"),
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        servers.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(tmp_path / log.name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise RuntimeError("mlflow server did not answer /health within 90 s")

    yield start
    for proc in servers:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def ray_cluster(proc_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A real 2-node Ray cluster on loopback (head + one worker node, 1 CPU each).

    Returns its address and the environment a driver needs to join it: Ray 2.60 enables token
    authentication on ``ray start --head``, so every process gets the same test token.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's unix sockets live under it
    env = {**proc_env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--num-gpus", "0", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--port",
            str(port),
            "--include-dashboard=false",
            "--temp-dir",
            str(temp_dir),
            *common,
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    # A second raylet on the same host is how Ray's own multi-node tests run; it shares the head's temp dir.
    subprocess.run(
        [str(BIN / "ray"), "start", "--address", address, *common],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    yield address, env
    end_processes(env["JEPA_TEST_MARKER"])


class MlflowRest:
    """The few MLflow REST endpoints the tests read (no MLflow client: the server's answer is the check)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/api/2.0/mlflow/{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def experiment_id(self, name: str) -> str:
        return self._call(f"experiments/get-by-name?experiment_name={name}")["experiment"]["experiment_id"]

    def runs(self, experiment_id: str) -> list[dict[str, Any]]:
        return self._call("runs/search", {"experiment_ids": [experiment_id], "max_results": 1000}).get(
            "runs", []
        )

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        out = self._call(f"metrics/get-history?run_id={run_id}&metric_key={key}").get("metrics", [])
        return sorted((int(m["step"]), float(m["value"])) for m in out)

    def artifacts(self, run_id: str) -> list[str]:
        return [f["path"] for f in self._call(f"artifacts/list?run_id={run_id}").get("files", [])]


def tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def params(run: dict[str, Any]) -> dict[str, str]:
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}
