from __future__ import annotations

from jepa_core.bench.kernels import op_kind


def test_op_kind__sorts_profiler_and_flop_counter_names():
    assert [op_kind(n) for n in ("aten::mm", "aten.addmm.default", "aten::bmm")] == ["matmul"] * 3
    flash = "aten::_scaled_dot_product_flash_attention_for_cpu_backward"
    assert [op_kind(n) for n in (flash, "aten._efficient_attention_forward")] == ["attention"] * 2
    others = ("aten::gelu", "aten::copy_", "aten::mmx", "aten.convolution")
    assert [op_kind(n) for n in others] == ["other"] * 4
