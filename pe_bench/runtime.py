"""JAX settings every entry point (CLI, benchmark workers, tests) switches on.

- float64 (stiff kinetic models need it);
- JAX's persistent compilation cache, so that a second process working on the same
  problem loads the compiled objective from disk instead of compiling it again. The
  folder is ``$PE_BENCH_JAX_CACHE`` (default ``~/.cache/pe_bench/jax``); set the variable
  to an empty string to switch the cache off;
- the device (``--device cpu|gpu``, ``$PE_BENCH_DEVICE``; default: what JAX finds);
- synchronous dispatch on the CPU (:func:`sync_cpu_dispatch`);
- how many threads a process runs batched computations on (:func:`compute_threads`).
"""

from __future__ import annotations

import os
from pathlib import Path

#: Compilations faster than this are not worth a disk entry.
MIN_COMPILE_SECONDS = 0.3


def jax_cache_dir() -> Path | None:
    """The persistent compilation cache folder, or None when switched off."""
    raw = os.environ.get("PE_BENCH_JAX_CACHE")
    if raw is None:
        return Path.home() / ".cache" / "pe_bench" / "jax"
    return Path(raw) if raw.strip() else None


DEVICES = ("cpu", "gpu")

#: Threads a process runs its batched CPU computations on (``Objective.batch``, Adam's
#: chunks); default: every core. ``pebench bench --workers N`` sets it to cores / N in
#: its worker processes, so that N workers share the cores instead of each taking all.
THREADS_ENV = "PE_BENCH_THREADS"


def compute_threads() -> int:
    """``$PE_BENCH_THREADS`` when set (at least 1), else the number of cores."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            pass
    return os.cpu_count() or 1


#: XLA flag that runs each CPU computation's intra-op work on its own thread instead of
#: XLA's Eigen thread pool (see :func:`sync_cpu_dispatch`).
SINGLE_THREAD_EIGEN = "--xla_cpu_multi_thread_eigen=false"


def sync_cpu_dispatch() -> None:
    """Run CPU computations on the thread that launches them, without XLA's Eigen pool.

    ``Objective.batch`` and Adam run one vmapped computation per core, each launched from
    its own thread and waited for at once. With JAX's asynchronous CPU dispatch (jax
    0.10.2), such concurrent computations that contain LAPACK calls (dense LU in Rodas5
    above 24 states, lineax's LU in diffrax Kvaerno5) deadlock: BioPreDyn B4's batch of 20
    vectors on two threads hung with every thread waiting and no CPU in use, every time
    in four tries; with synchronous dispatch it took 31 s. Synchronous dispatch alone was
    not enough: B4's PSO hung again in a benchmark worker, each launching thread blocked
    in ``CpuPjRtRawLoadedExecutable::Execute`` and every thread of XLA's intra-op Eigen
    pool waiting for work (the wedge PyAutoFit traced to the same pool and avoided with
    ``--xla_cpu_multi_thread_eigen=false``, PyAutoLabs/PyAutoFit#1528). So the Eigen pool
    is switched off too (:data:`SINGLE_THREAD_EIGEN` in ``XLA_FLAGS``): pe_bench's
    parallelism is its own threads, one vmapped solve per core, and a solve's small
    matrices gain nothing from the pool. Both settings are read when JAX creates its CPU
    client, so this must run before the first computation; it is called by
    :func:`configure_jax` and by ``Objective``, and the flag travels to worker processes
    through the environment.
    """
    import jax

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {SINGLE_THREAD_EIGEN}".strip()
    jax.config.update("jax_cpu_enable_async_dispatch", False)


def configure_jax(device: str | None = None) -> None:
    """Enable float64, the persistent compilation cache and the device (idempotent).

    Args:
        device: "cpu" or "gpu" (default ``$PE_BENCH_DEVICE``, else JAX's default
            backend: the GPU when the GPU build of JAX is installed and finds one).

    Raises:
        ProblemSpecError: an unknown device, or "gpu" where JAX finds none.
    """
    import jax

    from .errors import ProblemSpecError

    sync_cpu_dispatch()  # before anything creates JAX's CPU client
    device = device or os.environ.get("PE_BENCH_DEVICE") or None
    if device is not None:
        if device not in DEVICES:
            raise ProblemSpecError(f"--device: unknown device '{device}' (one of {', '.join(DEVICES)})")
        try:
            jax.devices(device)
        except RuntimeError:
            raise ProblemSpecError(
                f"--device {device}: JAX finds no {device.upper()} here (install the GPU build: "
                "pip install -e '.[gpu]')"
            ) from None
        jax.config.update("jax_default_device", jax.devices(device)[0])
        os.environ["PE_BENCH_DEVICE"] = device  # worker processes follow
    jax.config.update("jax_enable_x64", True)
    folder = jax_cache_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def device_info() -> dict:
    """The device computations run on: backend, device kind and count (for metadata)."""
    import jax

    dev = jax.config.jax_default_device or jax.devices()[0]
    return {"backend": dev.platform, "device": dev.device_kind, "count": len(jax.devices(dev.platform))}
