"""Sweep comparison reports: which setting won, and whether the difference is real.

The modules follow the data, from MLflow to the files on disk:

- :mod:`~orchestrator.report.fetch`: the sweep's runs and histories from MLflow's public client;
- :mod:`~orchestrator.report.frames`: the tidy trials frame (outcomes, flags, final metrics) and histories;
- :mod:`~orchestrator.report.summary`: mean ± 95% CI tables per parameter level and the leaderboard;
- :mod:`~orchestrator.report.comparison`: the best against the others, in words
  (:mod:`~orchestrator.report.stats`: t intervals, the seed-blocked Tukey comparison, power);
- :mod:`~orchestrator.report.seeds`, :mod:`~orchestrator.report.importance`: seed against setting, fANOVA;
- :mod:`~orchestrator.report.display`, :mod:`~orchestrator.report.table_cells`: how values and cells read;
- :mod:`~orchestrator.report.plots`, :mod:`~orchestrator.report.document`: PNGs, markdown and HTML;
- :mod:`~orchestrator.report.compose`: the report's sections; :mod:`~orchestrator.report.build`: the folder,
  and the parent run's copy; :mod:`~orchestrator.report.cli`: ``python -m orchestrator.report``;
- :mod:`~orchestrator.report.build_timing`: how long a 1,000-trial report takes to build.

This package exports the analysis, a pure function of the frames (pandas and scipy, no MLflow or matplotlib
import), which :mod:`orchestrator.tracking.ui` shares so the parent run and the report cannot disagree; the
builds are :func:`orchestrator.report.build.build_sweep_report` and ``build_report_from_frames``.
"""

from __future__ import annotations

from orchestrator.report.comparison import Comparison, blocked_comparison, compare_best
from orchestrator.report.display import MetricSpec, format_mean_ci, format_p, format_value, metric_spec
from orchestrator.report.frames import SweepInfo, sweep_info, tidy_history, trials_frame
from orchestrator.report.summary import leaderboard, parameter_table

__all__ = [
    "Comparison",
    "MetricSpec",
    "SweepInfo",
    "blocked_comparison",
    "compare_best",
    "format_mean_ci",
    "format_p",
    "format_value",
    "leaderboard",
    "metric_spec",
    "parameter_table",
    "sweep_info",
    "tidy_history",
    "trials_frame",
]
