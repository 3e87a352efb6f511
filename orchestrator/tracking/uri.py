"""Where the tracking store is, whether it answers, and how a user opens it: no MLflow import here.

The sweep's dry run and its up-front checks use these before anything heavy is imported.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from pathlib import Path


def resolve_tracking_uri(cli_uri: str | None, spec_uri: str | None, cwd: Path | None = None) -> str:
    """``--tracking-uri`` > ``$MLFLOW_TRACKING_URI`` > the sweep file > ``sqlite:///<cwd>/mlflow.db``.

    Local stores are made absolute: Ray runs trials in their own working directories, where a relative
    ``sqlite:///mlflow.db`` would silently create a second, empty database.
    """
    cwd = (cwd or Path.cwd()).resolve()
    uri = cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or spec_uri or f"sqlite:///{cwd / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        rel = uri[len("sqlite:///") :]
        if rel != ":memory:":
            uri = f"sqlite:///{(cwd / rel).resolve()}"
    elif "://" not in uri:  # a plain folder: MLflow's file store
        uri = (cwd / uri).resolve().as_uri()
    return uri


def unreachable(uri: str, timeout_s: float = 10.0) -> str | None:
    """Why an ``http(s)://`` tracking server cannot be used, or None; MLflow would retry for minutes."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return None
    except urllib.error.HTTPError as exc:
        return f"the server answers /health with HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no MLflow server answers there ({reason}); start one with mlflow server --host 127.0.0.1"


def redact_uri(uri: str) -> str:
    """Hides the password of ``scheme://user:password@host`` so it never reaches logs or artifacts."""
    return re.sub(r"(://[^/:@\s]+):[^/@\s]+@", r"\1:***@", uri)


def ui_hint(uri: str, experiment_id: str) -> tuple[str, str]:
    """The command that serves this store in the MLflow UI, and the URL of the experiment's runs table."""
    if uri.startswith(("http://", "https://")):
        base = redact_uri(uri).rstrip("/")
        url = f"{base}/#/experiments/{experiment_id}/runs"
        return f"open {base} (the tracking server is already running)", url
    cmd = f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"
    # MLflow 3 opens an experiment on its GenAI overview by default; the runs table is what a sweep needs.
    return cmd, f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs"
