"""Download curated SBML models from the BioModels REST API into a local cache."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import FetchError, ModelImportError
from ..files import temp_file
from ..model.sbml import read_sbml_string

#: Default BioModels REST endpoint; override with ``$PE_BENCH_BIOMODELS_URL`` or ``base_url``.
DEFAULT_BASE_URL = "https://www.ebi.ac.uk/biomodels"
BIOMODELS_ID = re.compile(r"^(BIOMD|MODEL)\d{10}$")
TIMEOUT_S = 30


def cache_dir() -> Path:
    """``$PE_BENCH_CACHE`` or ``~/.cache/pe_bench``."""
    return Path(os.environ.get("PE_BENCH_CACHE", Path.home() / ".cache" / "pe_bench"))


def cached_path(model_id: str) -> Path:
    """Where the SBML of ``model_id`` lives once fetched."""
    return cache_dir() / "biomodels" / f"{model_id}.xml"


def base_url() -> str:
    """The configured BioModels base URL."""
    return os.environ.get("PE_BENCH_BIOMODELS_URL", DEFAULT_BASE_URL).rstrip("/")


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # an HTTPError holds the open response
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(
            f"{url}: cannot reach BioModels ({reason}); are you offline? "
            "Set --base-url or $PE_BENCH_BIOMODELS_URL for a mirror"
        ) from exc


def fetch(model_id: str, base: str | None = None, force: bool = False) -> Path:
    """Download the curated SBML of a BioModels entry into the cache.

    The file list (``GET {base}/model/files/{id}?format=json``) names the main SBML
    file, which is then downloaded (``GET {base}/model/download/{id}?filename=...``),
    checked with libsbml and written atomically.

    Args:
        model_id: e.g. ``BIOMD0000000916``.
        base: REST base URL (default :func:`base_url`).
        force: download even if cached.

    Returns:
        The path of the cached SBML file.

    Raises:
        FetchError: bad id, network failure, HTTP error, or no SBML in the entry.
        ModelImportError: the downloaded file is not valid SBML.
    """
    if not BIOMODELS_ID.match(model_id):
        raise FetchError(f"'{model_id}' is not a BioModels id (like BIOMD0000000916)")
    target = cached_path(model_id)
    if target.is_file() and not force:
        return target
    base = (base or base_url()).rstrip("/")
    quoted = urllib.parse.quote(model_id)
    listing_url = f"{base}/model/files/{quoted}?format=json"
    try:
        listing = json.loads(_get(listing_url))
        main = listing.get("main") or []
        filename = main[0]["name"]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise FetchError(f"{listing_url}: no main SBML file listed for {model_id}") from exc
    url = f"{base}/model/download/{quoted}?filename={urllib.parse.quote(filename)}"
    data = _get(url)
    try:
        read_sbml_string(data.decode("utf-8"), f"{url}")
    except (UnicodeDecodeError, ModelImportError) as exc:
        raise ModelImportError(f"{url}: downloaded file is not valid SBML: {exc}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file(target.parent)
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)
    return target
