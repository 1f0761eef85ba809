"""Which problems pe_bench loads, and what each uses: the coverage table of docs/figures.md.

Loads every problem it finds (the shared benchmark collection, the built-ins, the
BioPreDyn problems), evaluates the llh at the nominal parameters with default settings,
and prints one row per problem: sizes, features used, load and compile seconds, llh,
the reference where one exists (REFERENCE.tsv; Blasi: petab's llh of the collection's
simulated data) and whether they agree within max(1e-3, 1e-4 |ref|), or the one-line
reason a problem is refused.

    .venv/bin/python benchmarks/coverage.py [--markdown] [--readme docs/figures.md]
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pe_bench.errors import PeBenchError  # noqa: E402
from pe_bench.objective import Objective  # noqa: E402
from pe_bench.problems.biopredyn import BUILTIN  # noqa: E402
from pe_bench.problems.registry import builtin_names, resolve  # noqa: E402
from pe_bench.report import summary  # noqa: E402
from pe_bench.runtime import configure_jax  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmark-models"
#: References that are not in REFERENCE.tsv (see ../shared/benchmark-models/README.md).
EXTRA_REFERENCES = {"Blasi_CellSystems2016": 642.8268936157374}
BEGIN, END = "<!-- coverage:begin -->", "<!-- coverage:end -->"


def sources() -> list[tuple[str, str]]:
    out = [(p.name, str(p)) for p in sorted(SHARED.iterdir()) if p.is_dir()]
    out += [(n, n) for n in builtin_names()]
    out += [(n, n) for n in BUILTIN]
    return out


def features(pb) -> str:
    used = []
    if pb.model.events:
        used.append(f"events ({len(pb.model.events)})")
    if pb.sim_steady is not None:
        used.append("steady-state measurements")
    if (pb.sim_preeq >= 0).any():
        used.append("pre-equilibration")
    if pb.priors is not None:
        used.append(f"priors ({pb.priors.n})")
    n_switches = summary(pb)["discontinuities"]
    if n_switches:
        used.append(f"discontinuities ({n_switches})")
    return ", ".join(used) or "-"


def row(name: str, source: str, references: dict[str, float]) -> dict:
    out = {"problem": name}
    t0 = time.perf_counter()
    try:
        pb = resolve(source)
    except PeBenchError as exc:
        return out | {"refused": str(exc).splitlines()[0]}
    load_s = time.perf_counter() - t0
    out |= {
        "states": len(pb.model.state_ids),
        "parameters": len(pb.x_ids),
        "conditions": len(pb.condition_ids),
        "measurements": len(pb.meas_y),
        "features": features(pb),
        "load_s": round(load_s, 2),
    }
    objective = Objective(pb)
    t0 = time.perf_counter()
    objective._value.lower(np.asarray(pb.x_nominal)).compile()
    out["compile_s"] = round(time.perf_counter() - t0, 1)
    nllh, status = objective.value(pb.x_nominal)
    out["llh"] = -nllh if status == 0 else np.nan
    ref = references.get(name)
    out["reference"] = ref
    if ref is not None:
        ok = abs(-nllh - ref) <= max(1e-3, 1e-4 * abs(ref))
        out["agrees"] = "yes" if ok else f"no ({-nllh - ref:+.3g})"
    else:
        out["agrees"] = ""
    out["refused"] = ""
    return out


def write_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme}: no {BEGIN} ... {END} block")
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), f"{BEGIN}\n{table}\n{END}", text, flags=re.S)
    readme.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", type=Path, help="replace the coverage block of this page (docs/figures.md)")
    args = ap.parse_args()
    configure_jax()
    references = pd.read_csv(SHARED / "REFERENCE.tsv", sep="\t", index_col=0)["llh_at_nominal"].to_dict()
    references |= EXTRA_REFERENCES
    rows = []
    for name, source in sources():
        rows.append(row(name, source, references))
        print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    df = pd.DataFrame(rows)
    formats = {"load_s": "{:.2f}", "compile_s": "{:.1f}", "llh": "{:.6f}", "reference": "{:.6f}"}
    for col, fmt in formats.items():
        df[col] = [fmt.format(v) if isinstance(v, int | float) and np.isfinite(v) else "" for v in df[col]]
    for col in ("states", "parameters", "conditions", "measurements"):
        df[col] = [str(int(v)) if isinstance(v, int | float) and np.isfinite(v) else "" for v in df[col]]
    table = df.fillna("").to_markdown(index=False, disable_numparse=True)
    print()
    print(table)
    if args.readme:
        write_readme(args.readme, table)


if __name__ == "__main__":
    main()
