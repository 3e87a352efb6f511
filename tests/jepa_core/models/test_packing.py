from __future__ import annotations

import torch
import torch.nn.functional as F

from jepa_core.models import Packing
from tests.jepa_core.models.ragged import ragged_context


def test_packing__round_trip_and_mask():
    _, valid = ragged_context()
    packing = Packing.of(valid)
    x = torch.arange(18.0).view(3, 6)
    packed = packing.pack(x)
    assert packed.tolist() == x[valid].tolist()
    torch.testing.assert_close(packing.unpack(packed), torch.where(valid, x, 0.0))
    assert packing.key_ok is not None and packing.key_ok.shape == (3, 1, 1, 6)
    assert Packing.of(torch.ones(2, 4, dtype=torch.bool)).key_ok is None  # nothing padded: unmasked attention


def test_packing__per_block_is_the_packing_of_the_repeated_layout():
    _, valid = ragged_context()
    k, t = 2, 3
    seqs = Packing.of(valid).per_block(k, t)
    repeated = F.pad(valid, (0, t), value=True).repeat_interleave(k, dim=0)  # (B*K, Lc+T)
    assert sorted(seqs.index.tolist()) == Packing.of(repeated).index.tolist()
    assert seqs.key_ok is not None and seqs.key_ok.equal(repeated[:, None, None, :])
    context = torch.arange(18.0).view(3, 6)
    queries = -torch.arange(1.0, 3 * k * t + 1).view(3 * k, t)
    layout = torch.cat([context.repeat_interleave(k, dim=0), queries], dim=1)  # (B*K, Lc+T)
    # The documented order: each valid context token K times, then the queries, sequence by sequence.
    expected = torch.cat([context[valid].repeat_interleave(k), queries.reshape(-1)])
    assert seqs.pack(layout).equal(expected)
