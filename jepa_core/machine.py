"""Which machine produced a number: the one description the bench, the nightly and every MLflow run use.

Every figure a user sees says the machine it came from (STYLE.md). Nothing here imports torch at module
level, so the sweep's dry run and the tracking tags stay cheap.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
from typing import Any

LIBRARIES = ("torch", "ray", "mlflow", "timm")


def _cpuinfo(*keys: str) -> str | None:
    """The value of the first ``/proc/cpuinfo`` line that starts with one of ``keys``; None without one."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(keys):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU model as the kernel reports it, else what Python knows."""
    return _cpuinfo("model name") or platform.processor() or platform.machine() or "unknown"


def device_name(device: Any) -> str:
    """The GPU's name for a CUDA device, else the CPU model (``device``: a ``torch.device``)."""
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    return cpu_name()


def cpu_capability() -> str:
    """The vector instruction set torch's CPU kernels dispatch to on this machine (``AVX512``, ``AVX2``, ...).

    The model name alone does not tell machines apart: virtual machines on AMD EPYC hosts with and without
    AVX-512 both report "AMD EPYC", and their matmul speeds differ. Imports torch.
    """
    import torch

    return torch.backends.cpu.get_cpu_capability()


# CPU flags (/proc/cpuinfo) of instructions that compute in bf16: x86's AVX512-BF16 and AMX, Arm's BF16.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_native_bf16() -> bool | None:
    """Whether this CPU has bf16 instructions (:data:`NATIVE_BF16_FLAGS`); None where the kernel does not say.

    Without them torch emulates bf16 on a CPU, and a bf16 step runs slower than an fp32 one.
    """
    flags = _cpuinfo("flags", "Features")
    return None if flags is None else not NATIVE_BF16_FLAGS.isdisjoint(flags.split())


def compute(device: Any) -> dict[str, str | int]:
    """The device, its vector instruction set on a CPU, and the number of torch threads: what the bench
    prints beside every figure."""
    import torch

    found: dict[str, str | int] = {"device": device_name(device)}
    if device.type == "cpu":
        found["cpu_capability"] = cpu_capability()
    return {**found, "threads": torch.get_num_threads()}


def device_kind(with_capability: bool = True) -> str:
    """``cuda:<gpu name>`` where CUDA is available, else ``cpu:<model> x<cores> <capability>``.

    Nights compare only within one device kind. The core count is part of a CPU's kind: the same CPU model
    in a 2-core VM and in a 64-core box are different machines to a throughput benchmark; so is the vector
    instruction set (:func:`cpu_capability`). ``with_capability=False`` gives the kind as nights recorded
    it before the capability was part of it.
    """
    import torch

    if torch.cuda.is_available():
        kind = f"cuda:{torch.cuda.get_device_name(0)}"
    else:
        kind = f"cpu:{cpu_name()} x{os.cpu_count() or 1}"
        if with_capability:
            kind += f" {cpu_capability()}"
    return kind.replace("'", "").replace('"', "")  # it is quoted in MLflow search filters


def versions(libraries: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """``{"python": ..., "<library>": version or "absent"}``, read from package metadata (no imports)."""
    found = {"python": platform.python_version()}
    for package in libraries:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def host() -> str:
    return socket.gethostname()


def matmul_thread_gflops(size: int = 1024, reps: int = 4, tries: int = 3) -> float:
    """fp32 matmul GFLOP per CPU-second on one torch thread: this CPU's speed, best of ``tries``.

    Per CPU-second, not per wall second, so other processes on the machine do not make it look slower. The
    sweep's estimate scales its CPU trial throughput by it (``orchestrator.sweep.estimate``). Imports torch.
    """
    import time

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        best = 0.0
        for _ in range(tries):
            start = time.process_time()
            for _ in range(reps):
                a @ b
            best = max(best, reps * 2 * size**3 / 1e9 / max(time.process_time() - start, 1e-9))
        return best
    finally:
        torch.set_num_threads(threads)
