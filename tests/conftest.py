import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from pe_bench.runtime import configure_jax  # noqa: E402

configure_jax()  # float64 and the persistent compilation cache, as the CLI does


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own BioModels cache folder."""
    monkeypatch.setenv("PE_BENCH_CACHE", str(tmp_path / "cache"))
