"""Sweeps: a sweep file (``spec``) planned into trials (``plan``) in one of its sizes (``profiles``: gpu,
cpu, smoke), costed (``estimate``), run on Ray Tune (``tuner``, ``trainable``) by the command line (``cli``,
``run``), its time outside the trials measured (``overhead``).

Only the Ray-free names are exported here, so ``import orchestrator.sweep`` (and ``--dry-run``) imports
neither Ray nor MLflow nor torch.
"""

from orchestrator.sweep.errors import SpecError
from orchestrator.sweep.plan import SweepPlan, TrialSpec, config_id, plan_sweep
from orchestrator.sweep.spec import SweepSpec, load_spec

__all__ = ["SpecError", "SweepPlan", "SweepSpec", "TrialSpec", "config_id", "load_spec", "plan_sweep"]
