"""What the MLflow UI shows: the parent run's answer, the trials' dataset inputs and source, the trials URL.

On a real sqlite store built here (2 EMA values x 3 seeds); the end-to-end sweep test reads the same records
back from a real sweep and opens the UI in chromium.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from jepa_core.config import build_config
from orchestrator.report import fetch as report
from orchestrator.sweep import trainable
from orchestrator.tracking import runs as tracking
from orchestrator.tracking import ui as mlflow_ui
from tests.jepa_core.conftest import TINY

DESCRIPTION = "Does EMA momentum change what I-JEPA learns?"


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("ema", artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(
        exp,
        tags={
            "jepa.role": "sweep", "jepa.sweep": "ema", "jepa.swept_params": '["ema.momentum_start"]',
            "jepa.metric": "probe_acc", "jepa.metric_goal": "maximize", "jepa.metrics_version": "2",
            mlflow_ui.DESCRIPTION: DESCRIPTION,
        },
    ).info.run_id  # fmt: skip
    for momentum in (0.99, 0.996):
        for seed in range(3):
            run = client.create_run(
                exp,
                tags={
                    "mlflow.parentRunId": parent, "jepa.role": "trial", "jepa.seed": str(seed),
                    "jepa.config_id": f"cfg{momentum}", "jepa.metrics_version": "2",
                },
            ).info.run_id  # fmt: skip
            # The seed moves both settings alike, plus a small interaction: residual variance to test with.
            acc = 0.80 + (0.05 + 0.001 * seed if momentum == 0.996 else 0.0) + 0.002 * seed
            metrics = [Metric("probe_acc", acc, 0, 2), Metric("test_probe_acc", acc - 0.01, 0, 2)]
            params = [Param("ema.momentum_start", str(momentum)), Param("train.seed", str(seed))]
            client.log_batch(run, metrics=metrics, params=params)
            client.set_terminated(run, "FINISHED")
    return {"uri": uri, "client": client, "parent": parent, "root": tmp_path}


def test_log_answer__best_configuration_verdict_table_and_note_on_the_parent(store: dict[str, Any]) -> None:
    client, parent = store["client"], store["parent"]
    runs, _ = report.fetch_runs(client, "ema", parent)
    mlflow_ui.log_answer(client, runs, parent, "reports/ema/x")
    run = client.get_run(parent)
    m, tags = run.data.metrics, run.data.tags
    assert m["best_probe_acc"] == pytest.approx(0.853)  # the mean over seeds 0, 1, 2 of 0.996
    assert m["best_test_probe_acc"] == pytest.approx(0.843) and m["best_seeds"] == 3
    assert m["best_probe_acc_ci95"] > 0
    assert (
        tags["jepa.best_config"] == "ema.momentum_start=0.996"
        and tags["jepa.best.ema.momentum_start"] == "0.996"
    )
    assert tags["jepa.verdict.distinguishable"] == "true"
    assert tags["jepa.verdict.runner_up"] == "ema.momentum_start=0.99"
    assert tags["jepa.verdict"].startswith("Best configuration `ema.momentum_start=0.996`")
    note = tags[mlflow_ui.NOTE]
    assert note.startswith(
        DESCRIPTION + "\n\n**Best configuration:** `ema.momentum_start=0.996`: probe acc 85.30"
    )
    assert "on the test split 84.30 % (not used to choose)" in note and "`reports/ema/x`" in note
    local = Path(client.download_artifacts(parent, "leaderboard.json", str(store["root"])))
    table = json.loads(local.read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert [(r["rank"], r["ema.momentum_start"], r["seeds"]) for r in rows] == [
        (1, 0.996, "3/3"),
        (2, 0.99, "3/3"),
    ]
    assert rows[0]["probe_acc_mean"] == pytest.approx(0.853) and rows[0]["diff_vs_best"] is None


def test_log_answer__a_rebuilt_report_replaces_the_answer_and_never_doubles_the_table(
    store: dict[str, Any],
) -> None:
    client, parent = store["client"], store["parent"]
    runs, _ = report.fetch_runs(client, "ema", parent)
    mlflow_ui.log_answer(client, runs, parent)
    mlflow_ui.log_answer(client, runs, parent)
    paths = {a.path for a in client.list_artifacts(parent)}
    assert {"leaderboard.json", "leaderboard_2.json"} <= paths
    for name in ("leaderboard.json", "leaderboard_2.json"):
        table = json.loads(Path(client.download_artifacts(parent, name, str(store["root"]))).read_text())
        assert len(table["data"]) == 2
    assert client.get_run(parent).data.tags[mlflow_ui.NOTE].count("**Best configuration:**") == 1


def test_answer__none_when_no_trial_has_the_metric(store: dict[str, Any]) -> None:
    runs, parent = report.fetch_runs(store["client"], "ema", store["parent"])
    runs = runs.drop(columns=["metrics.probe_acc"])
    assert mlflow_ui.answer(runs, parent) is None
    assert "no answer" in mlflow_ui.note_text(None, None)


def test_source_tags__the_bare_commit_for_mlflow_and_none_when_unknown() -> None:
    tags = mlflow_ui.source_tags("abc123-dirty")
    assert tags == {
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": "orchestrator.sweep",
        "mlflow.source.git.commit": "abc123",
    }
    assert "mlflow.source.git.commit" not in mlflow_ui.source_tags("unknown")


@pytest.mark.parametrize(("goal", "ascending"), [("maximize", "false"), ("minimize", "true")])
def test_trials_url__filters_on_the_parent_orders_by_the_metric_and_opens_the_charts(
    goal: str, ascending: str
) -> None:
    url = mlflow_ui.trials_url("http://127.0.0.1:5000/#/experiments/7/runs", "p1", "train_loss", goal)
    base, _, query = url.partition("?")
    assert base == "http://127.0.0.1:5000/#/experiments/7/runs" and " " not in query
    assert dict(urllib.parse.parse_qsl(query)) == {
        "searchFilter": "tags.`mlflow.parentRunId` = 'p1'",
        "orderByKey": "metrics.`train_loss`",
        "orderByAsc": ascending,
        "compareRunsMode": "CHART",
    }


def test_dataset_input__digest_follows_the_images_the_trial_sees() -> None:
    def digest(**over: Any) -> Any:
        return mlflow_ui.dataset_input(build_config(overrides=[TINY, over])).dataset

    a, b = digest(**{"train.seed": 0}), digest(**{"train.seed": 1})
    assert a.name == "digits" and a.digest == b.digest  # the whole split and fixed eval splits: any seed
    sizes = json.loads(a.profile)
    assert (
        sizes["probe_train"] == 400 and sizes["test"] == 200 and sizes["pretrain"] > sizes["validation"] > 0
    )
    # data.subset is drawn with train.seed: other seeds see other images.
    sub0, sub1 = (
        digest(**{"data.subset": 600, "train.seed": 0}),
        digest(**{"data.subset": 600, "train.seed": 1}),
    )
    assert sub0.digest != sub1.digest and json.loads(sub0.profile)["pretrain"] == 600
    assert digest(**{"eval.test_subset": 100}).digest != a.digest


def test_log_dataset__a_racing_trial_retries_and_a_lasting_error_is_only_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Store:
        def __init__(self, failures: int) -> None:
            self.failures, self.calls = failures, 0

        def log_inputs(self, run_id: str, datasets: list[Any]) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise RuntimeError("UNIQUE constraint failed: datasets.experiment_id, datasets.name")

    cfg = build_config(overrides=[TINY])
    for failures, calls, warned in ((1, 2, False), (5, 3, True)):
        fake = Store(failures)
        monkeypatch.setattr(tracking, "client", lambda uri, fake=fake: fake)
        trainable._log_dataset("sqlite:///x.db", "r1", cfg)
        assert fake.calls == calls
        assert ("the dataset input was not logged" in capsys.readouterr().err) == warned
