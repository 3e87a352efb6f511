"""Which profile a sweep runs: ``gpu`` (the file as written), ``cpu`` (its CPU-sized section) or ``smoke``.

Without ``--profile`` the cluster decides: a sweep whose trials ask for a GPU runs as written where the Ray
cluster the sweep runs on (local or ``--address``) has a GPU, and its ``cpu`` section where the cluster has
none, so a multi-day GPU sweep never starts on a laptop unasked. ``--profile`` chooses explicitly;
``--profile gpu`` on a cluster without a GPU is refused. Imports neither Ray nor MLflow nor torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.sweep.errors import SpecError
from orchestrator.sweep.plan import SweepPlan, missing_profile, plan_sweep
from orchestrator.sweep.spec import SweepSpec


@dataclass(frozen=True)
class ProfilePlans:
    """The sweep in every profile its file has, each checked whole before anything starts, and the profile
    asked for (None: the cluster decides when the sweep starts, :func:`choose_profile`)."""

    spec: SweepSpec
    by_profile: dict[str, SweepPlan]
    requested: str | None
    sets: dict[str, Any]


def plan_profiles(spec: SweepSpec, requested: str | None, sets: dict[str, Any]) -> ProfilePlans:
    """Plans every profile of ``spec`` (raises SpecError for the first invalid trial of any of them)."""
    check_requested(spec, requested)
    by_profile = {name: plan_sweep(spec, profile=name, sets=sets) for name in spec.profiles}
    return ProfilePlans(spec, by_profile, requested, dict(sets))


def requested_profile(profile: str | None, smoke: bool) -> str | None:
    """``--profile`` and ``--smoke`` (which means ``--profile smoke``) as one choice; None lets the cluster
    decide. Raises SpecError when they disagree."""
    if smoke and profile not in (None, "smoke"):
        raise SpecError(f"--smoke means --profile smoke; it cannot be combined with --profile {profile}")
    return "smoke" if smoke else profile


def check_requested(spec: SweepSpec, requested: str | None) -> None:
    """The requested profile exists in the file (checked before anything starts). Raises SpecError."""
    if requested is not None:
        problem = missing_profile(spec, requested)
        if problem:
            raise SpecError(f"{spec.path}: {problem}")


def choose_profile(spec: SweepSpec, requested: str | None, gpus: float, where: str) -> tuple[str, str]:
    """(profile, why) for a sweep on a cluster with ``gpus`` GPUs; ``where`` names that cluster in the reason
    ("the Ray cluster", "this machine").

    Raises:
        SpecError: ``--profile gpu`` where there is no GPU (or the file's trials ask for none).
    """
    check_requested(spec, requested)
    have = f"{where} has {gpus:g} GPU{'s' if gpus != 1 else ''}"
    if requested == "gpu" and gpus == 0:
        raise SpecError(
            f"--profile gpu: {where} has no GPU; leave out --profile to run the sweep's cpu section, or "
            "join a cluster with one (--address)"
        )
    if requested is not None:
        return requested, f"--profile {requested}" if requested != "smoke" else "--smoke"
    if spec.main_profile == "cpu":
        return "cpu", "the sweep's trials ask for no GPU"
    if gpus > 0:
        return "gpu", have
    if "cpu" in spec.profiles:
        return "cpu", f"{where} has no GPU"
    return "gpu", f"{where} has no GPU and the sweep file has no cpu section: its GPU trials run on CPUs"


def profile_line(spec: SweepSpec, profile: str, why: str) -> str:
    """The sweep's first line: which profile runs, why, and how to choose another."""
    chosen = spec.profiles[profile]
    what = {
        None: "the sweep file as written",
        "cpu": "the sweep file's cpu section, sized for a machine without a GPU",
        "smoke": "the sweep file's smoke section, a pipeline check: its numbers do not answer the question",
    }[chosen.section]
    others = [p for p in spec.profiles if p != profile]
    choose = f"; --profile {'|'.join(others)} chooses another" if others else ""
    return f"profile {profile} ({why}): {what}{choose}"
