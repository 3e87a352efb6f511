from __future__ import annotations

from jepa_core.bench.mask_match import TOKENS_TOLERANCE, match_mask_ratio, project_predicted_tokens
from jepa_core.config import build_config


def test_match_mask_ratio__hits_the_requested_predicted_tokens():
    cfg = build_config("reference_112")  # a 14x14 grid, 4 target blocks
    ratio = match_mask_ratio(cfg, 100.0, draws=80, iters=8)
    assert abs(project_predicted_tokens(cfg, ratio, draws=300, seed=1) / 100.0 - 1.0) < TOKENS_TOLERANCE / 2
