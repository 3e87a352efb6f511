"""The Ray Tune side of a sweep: the search space, the Tuner, and the live progress display.

:func:`search_space` declares every trial in one place: grid and random sweeps as Tune grids of the plan's
configurations x seeds, optuna as one Tune domain per parameter, repeated once per seed by
:class:`~orchestrator.sweep.repeat.SeedRepeater`. :func:`build_tuner` wraps the trainable
(:func:`orchestrator.sweep.trainable.run_trial`) with the trial's resources; :class:`ProgressPrinter` is
what the sweep prints while it runs.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from orchestrator.sweep.plan import SweepPlan, trial_label, trial_params
from orchestrator.sweep.repeat import SeedRepeater
from orchestrator.sweep.trainable import TrialContext, run_trial
from orchestrator.sweep.warm import ReportPreloader


def search_space(plan: SweepPlan) -> dict[str, Any]:
    """Tune's ``param_space``: grid and random run the trial table as grids of configurations x seeds;
    optuna gets one Tune domain per parameter (seeds come from SeedRepeater's index)."""
    spec = plan.spec
    if spec.method != "optuna":
        configs: list[dict[str, Any]] = []
        for trial in plan.trials:
            if trial.params not in configs:
                configs.append(trial.params)
        return {"params": tune.grid_search(configs), "seed": tune.grid_search(list(spec.seeds))}
    space: dict[str, Any] = {}
    for p in spec.parameters:
        if p.values is not None:
            space[p.key] = tune.choice(list(p.values))
        elif p.distribution == "int_uniform":
            space[p.key] = tune.randint(int(p.min), int(p.max) + 1)  # Tune's upper bound is exclusive
        elif p.distribution == "log_uniform":
            space[p.key] = tune.loguniform(p.min, p.max)
        else:
            space[p.key] = tune.uniform(p.min, p.max)
    return space


def build_tuner(
    plan: SweepPlan,
    ctx: TrialContext,
    *,
    name: str,
    storage: Path,
    cpu: float,
    gpu: float,
    restore: Path | None,
    printer: ProgressPrinter,
    preload_report: bool = True,
) -> tune.Tuner:
    """A Tuner for the plan, or one restoring the interrupted experiment at ``restore``.

    ``preload_report``: import the report's modules while the trials train (:class:`ReportPreloader`).
    """
    trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=ctx), {"cpu": cpu, "gpu": gpu})
    if restore is not None:
        # Finished trials keep their results; unfinished and errored ones continue from their checkpoints.
        return tune.Tuner.restore(
            str(restore), trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    spec = plan.spec
    search_alg = scheduler = None
    if spec.method == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        # Its INFO lines ("A new study created in memory", one per told trial) would interleave with the
        # progress display, which already says when each trial finished and what it scored.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # Each suggestion runs once per seed; Optuna learns from the mean over seeds, or is told the
        # suggestion failed if any seed failed (never the mean of the survivors).
        tpe = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=spec.sampler_seed))
        search_alg = SeedRepeater(tpe, repeat=len(spec.seeds), set_index=True)
    if spec.scheduler.kind == "asha":
        from ray.tune.schedulers import ASHAScheduler

        epochs = (
            max(plan.trial_config(t.params, t.seed).train.epochs for t in plan.trials)
            if plan.trials
            else plan.trial_config({}, spec.seeds[0]).train.epochs
        )
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=epochs,
            grace_period=min(spec.scheduler.grace_period, epochs),
            reduction_factor=spec.scheduler.reduction_factor,
        )
    return tune.Tuner(
        trainable,
        param_space=search_space(plan),
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode="max" if spec.goal == "maximize" else "min",
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=1 if plan.trials else plan.num_trials,
            max_concurrent_trials=plan.max_concurrent_trials,
            # A finished trial's worker runs the next one: saves ~10 s of process start and imports per trial.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage),
            verbose=0,
            log_to_file=True,
            # Tune's CSV and JSON trial logs, not its TensorBoard logger: tensorboardX imports torch into the
            # driver (2.5 s on 2 cores, before the first trial starts); the MLflow UI shows the curves.
            callbacks=[
                printer,
                CSVLoggerCallback(),
                JsonLoggerCallback(),
                *([ReportPreloader()] if preload_report else []),
            ],
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


class ProgressPrinter(tune.Callback):
    """A concise live view: one line per finished or failed trial, a status table at most every ``every_s``
    when a trial started or reported, and between them a one-line heartbeat every ``heartbeat_s``.

    A CPU trial can take minutes to its first epoch: the heartbeat says the sweep is alive and what runs, in
    one short line, so a log file does not sit silent. It is pickled with the experiment and restored by
    ``--resume``, so it holds only plain data (``heartbeat_s`` is a class default for older pickles).
    """

    heartbeat_s: float = 60.0

    def __init__(self, plan: SweepPlan, every_s: float = 20.0, heartbeat_s: float = 60.0) -> None:
        self.plan, self.every_s, self.heartbeat_s = plan, every_s, heartbeat_s
        self._start = self._last = 0.0
        self._dirty = False
        self._epochs: dict[str, int] = {}

    def _out(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self._start)
        return f"[{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}]"

    def _label(self, trial: Any) -> str:
        return trial_label(*trial_params(trial.config, self.plan))

    def _planned_epochs(self, trial: Any) -> int:
        if trial.trial_id not in self._epochs:
            cfg = self.plan.trial_config(*trial_params(trial.config, self.plan))
            self._epochs[trial.trial_id] = cfg.train.epochs
        return self._epochs[trial.trial_id]

    def setup(self, **info: Any) -> None:
        self._start = self._last = time.monotonic()
        self._out(
            f"{self._elapsed()} sweep {self.plan.spec.name}: {self.plan.num_trials} trials; "
            f"a status table every {self.every_s:.0f} s"
        )

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._dirty = True

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._dirty = True

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        r = trial.last_result or {}
        metric = self.plan.spec.metric
        value = f"{metric} {r[metric]:.4f}" if isinstance(r.get(metric), (int, float)) else "no metric"
        test = r.get(f"test_{metric}")
        if isinstance(test, (int, float)):  # scored once, at the last epoch; shown, never used to choose
            value += f" (validation; test {test:.4f})"
        epochs = r.get("epoch", 0)
        state = "finished"
        if r.get("failed"):
            state = "failed (diverged)"
        elif epochs < self._planned_epochs(trial):
            state = "stopped early"
        self._out(f"{self._elapsed()} {state}: {self._label(trial)}: {value} after {epochs} epochs")

    @staticmethod
    def _reason(trial: Any) -> str:
        """The last line of the trial's error file, where Tune keeps the full traceback."""
        error_file = getattr(trial, "error_file", None)
        if error_file and Path(error_file).is_file():
            lines = [ln for ln in Path(error_file).read_text().splitlines() if ln.strip()]
            if lines:
                return lines[-1].strip()[:300]
        return "see the trial's error.txt"

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        r = trial.last_result or {}
        since = f"its epoch-{int(r['epoch'])} checkpoint" if r.get("epoch") else "the start"
        self._out(
            f"{self._elapsed()} retrying: {self._label(trial)} from {since} after: {self._reason(trial)} "
            f"(traceback in {trial.error_file})"
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._out(
            f"{self._elapsed()} FAILED: {self._label(trial)}: {self._reason(trial)} ({trial.error_file})"
        )

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        quiet_s = time.monotonic() - self._last
        if self._dirty and quiet_s >= self.every_s:
            self._out(self.table(trials))
        elif not self._dirty and quiet_s >= self.heartbeat_s:
            self._out(self.heartbeat(trials))
        else:
            return
        self._last, self._dirty = time.monotonic(), False

    def heartbeat(self, trials: list) -> str:
        """``[0:03:00] 7 pending, 2 running; no new epoch in 60 s; running: a=1 seed=0 (epoch 0/2), ...``:
        the seconds since the last line printed, in which no trial started or reported."""
        quiet = int(time.monotonic() - self._last)
        running = [f"{self._label(t)} (epoch {self._epoch_of(t)})" for t in trials if t.status == "RUNNING"]
        line = f"{self._elapsed()} {_status_summary(trials, self.plan.num_trials)}; no new epoch in {quiet} s"
        return line + (f"; running: {', '.join(running)}" if running else "")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._out(self.table(trials))

    def table(self, trials: list) -> str:
        """The status line (trials by state) over one row per trial: label, status, epoch, metric, loss."""
        metric = self.plan.spec.metric
        rows = []
        for t in trials:
            r = t.last_result or {}
            value = r.get(metric)
            rows.append(
                (
                    self._label(t),
                    t.status,
                    self._epoch_of(t),
                    f"{value:.4f}" if isinstance(value, (int, float)) else "-",
                    f"{r['train_loss']:.4f}" if isinstance(r.get("train_loss"), (int, float)) else "-",
                )
            )
        text = _plain_table(("trial", "status", "epoch", metric, "train_loss"), rows)
        lines = [
            f"{self._elapsed()} {_status_summary(trials, self.plan.num_trials)}",
            *(f"  {line}" for line in text.splitlines()),
        ]
        return "\n".join(lines)

    def _epoch_of(self, trial: Any) -> str:
        """``epoch/planned`` of a trial: its last reported epoch (0 before the first) over its schedule."""
        return f"{(trial.last_result or {}).get('epoch', 0)}/{self._planned_epochs(trial)}"


def _status_summary(trials: list, planned: int) -> str:
    """``7 pending, 2 running``: trials counted by Tune status, in the statuses' alphabetical order, then
    ``, 4 more to come`` for the ``planned`` trials Tune does not hold yet (a searcher such as Optuna's
    suggests a trial only when a slot frees, so Tune's own counts would understate what is left)."""
    counts = Counter(t.status for t in trials)
    parts = [f"{n} {status.lower()}" for status, n in sorted(counts.items())]
    if planned > len(trials):
        parts.append(f"{planned - len(trials)} more to come")
    return ", ".join(parts)


def _plain_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns two spaces apart (no pandas: the live view must not pause Tune's loop for an
    import)."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows)
    )
