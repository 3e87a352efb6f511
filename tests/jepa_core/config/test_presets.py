from __future__ import annotations

import pytest

from jepa_core.config import PRESETS, build_config, config_keys


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_build_config__every_preset_is_valid(preset):
    cfg = build_config(preset)
    assert cfg.data.image_size % cfg.model.patch_size == 0


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets__set_only_known_keys(preset):
    assert set(PRESETS[preset]) <= set(config_keys())
