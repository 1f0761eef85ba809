"""JAX settings every entry point (CLI, benchmark workers, tests) switches on.

- float64 (stiff kinetic models need it);
- JAX's persistent compilation cache, so that a second process working on the same
  problem loads the compiled objective from disk instead of compiling it again. The
  folder is ``$PE_BENCH_JAX_CACHE`` (default ``~/.cache/pe_bench/jax``); set the variable
  to an empty string to switch the cache off.
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


def configure_jax() -> None:
    """Enable float64 and the persistent compilation cache (idempotent)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    folder = jax_cache_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
