"""Counting the operators that make the host wait for the device.

On CUDA the host runs ahead of the GPU until an operator needs a device value on the host: reading a scalar
(``.item()``, ``float(t)``, ``bool(t)``: ``aten._local_scalar_dense``), or an output whose shape depends on
the data (``nonzero``, ``masked_select``, ``unique``, ``repeat_interleave`` without ``output_size``). Each one
stalls the launch queue. :class:`SyncCounter` is a ``TorchDispatchMode``, so it sees those operators on any
device, the CPU included: a CPU test can prove that the device part of a training step has none.
"""

from __future__ import annotations

import collections
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

# ATen operators (overload names stripped) that read device data back to the host.
SYNC_OPS = frozenset({
    "_local_scalar_dense", "item", "is_nonzero", "equal", "nonzero", "nonzero_numpy", "masked_select",
    "unique", "_unique", "_unique2", "unique_consecutive", "unique_dim", "repeat_interleave", "allclose",
    "_assert_async", "histc", "bincount",
})  # fmt: skip


class SyncCounter(TorchDispatchMode):
    """``with SyncCounter() as c: ...``, then ``c.counts`` (operator -> calls) and ``c.total``.

    ``repeat_interleave`` counts only without ``output_size``: with it, the output's shape is known on the
    host and nothing is read back.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = func._schema.name.split("::", 1)[-1]
        if name in SYNC_OPS and not (name == "repeat_interleave" and kwargs.get("output_size") is not None):
            self.counts[name] += 1
        return func(*args, **kwargs)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
