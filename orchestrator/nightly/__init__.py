"""The nightly benchmark: is the trainer or the orchestrator slower or worse than on the last nights?

The modules follow one night, from the suite file to the verdict:

- :mod:`~orchestrator.nightly.schema`: the suite file's pydantic models; :mod:`~orchestrator.nightly.suite`:
  loading it (``--smoke`` merged, one-line errors) into the specs a night runs;
- :mod:`~orchestrator.nightly.measure`: the sections (bench, quality), with
  :mod:`~orchestrator.nightly.overhead` (the sweep CLI against in-process training) and
  :mod:`~orchestrator.nightly.yardstick` (matmul-peak samples and other processes' CPU load around each);
- :mod:`~orchestrator.nightly.metrics`: metric names, units and how timings follow the machine;
  :mod:`~orchestrator.nightly.tolerance`: how far a metric may move;
- :mod:`~orchestrator.nightly.baseline`: the rolling median and baseline files;
  :mod:`~orchestrator.nightly.verdict`: each metric judged; :mod:`~orchestrator.nightly.render`: the verdict
  as a table and lines;
- :mod:`~orchestrator.nightly.store`: nights as MLflow runs; :mod:`~orchestrator.nightly.report`: the
  report folder and trend plots;
- :mod:`~orchestrator.nightly.night`: one night end to end; :mod:`~orchestrator.nightly.cli`:
  ``python -m orchestrator.nightly``.

Exported here: the names that need neither torch, MLflow nor Ray (loading a suite, judging numbers).
"""

from __future__ import annotations

from orchestrator.nightly.suite import Suite, SuiteError, load_suite
from orchestrator.nightly.tolerance import Tolerance
from orchestrator.nightly.verdict import Row, judge

__all__ = ["Row", "Suite", "SuiteError", "Tolerance", "judge", "load_suite"]
