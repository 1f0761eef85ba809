"""BioPreDyn-Bench B2 and B4 as PEtab: pe_bench's objective against the authors' own.

The reference is computed here from the raw files alone, without pe_bench's model code:
the right-hand side is the authors' C implementation (``b*_fullC_template.c``,
``amigoRHS``) translated statement by statement into Python, integrated with scipy's
LSODA from the experiments' initial states in ``fullC_data.mat``, and scored with their
weighted least squares ``J = sum(((sim - data) * Q)^2)``.
"""

import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from scipy.integrate import solve_ivp
from typer.testing import CliRunner

from pe_bench.cli import app
from pe_bench.objective import Objective
from pe_bench.problems.biopredyn import write_petab
from pe_bench.problems.petab_io import load_petab

RAW = Path(__file__).resolve().parents[2] / "shared" / "biopredyn"

pytestmark = pytest.mark.slow


def c_model(c_file: Path):
    """The C template's amigoRHS as a Python function ``f(t, y, pars)`` and its state names."""
    text = c_file.read_text()
    start = text.index("int amigoRHS(realtype t, N_Vector y, N_Vector ydot, void *data){")
    body = text[start : text.index("return(0);", start)]
    states, derivs, pars = {}, {}, {}
    for name, value in re.findall(r"#define\s+(\w+)\s+([^\n]+)", text[:start]):
        value = value.strip()
        if m := re.fullmatch(r"Ith\(y,(\d+)\)", value):
            states[name] = int(m.group(1))
        elif m := re.fullmatch(r"Ith\(ydot,(\d+)\)", value):
            derivs[name] = int(m.group(1))
        elif m := re.fullmatch(r"\(\*amigo_model\)\.pars\[(\d+)\]", value):
            pars[name] = int(m.group(1))
    statements = re.findall(r"^\s*(\w+)\s*=\s*([^;]+);", body.split("/* *** Equations *** */")[1], re.M)
    assert statements and not any(re.search(r"(?<![\w.])\d+/\d+(?![\w.])", e) for _, e in statements)
    lines = ["def f(t, y, pars):"]
    lines += [f"    {n} = y[{i}]" for n, i in states.items()]
    lines += [f"    {n} = pars[{i}]" for n, i in pars.items()]
    lines += [f"    {n} = {e}" for n, e in statements]
    order = sorted(derivs, key=derivs.get)
    lines.append(f"    return [{', '.join(order)}]")
    namespace = {"pow": math.pow, "exp": math.exp, "log": math.log, "sqrt": math.sqrt, "fabs": abs}
    exec("\n".join(lines), namespace)
    return namespace["f"], sorted(states, key=states.get)


def authors_objective(which: str) -> tuple[float, list[np.ndarray]]:
    """J at the nominal parameters, and the weighted residuals per experiment."""
    base = RAW / which
    f, state_names = c_model(base / f"{which.lower()}_fullC_template.c")
    mat = scipy.io.loadmat(str(base / "fullC_data.mat"), squeeze_me=False, struct_as_record=False)
    priv = mat["privstruct"][0, 0]
    inputs = mat["inputs"][0, 0]
    model, pe = inputs.model[0, 0], inputs.PEsol[0, 0]
    pars = np.asarray(model.par, float).ravel().copy()
    body = (base / "nominalpars.h").read_text().split("{", 1)[1].split("}", 1)[0]
    nominal = np.array([float(v) for v in body.replace("\n", "").split(",") if v.strip()])
    index = np.asarray(pe.index_global_theta, int).ravel() - 1  # MATLAB indices
    assert len(index) == len(nominal)
    pars[index] = nominal
    total, residuals = 0.0, []
    for e in range(int(np.asarray(priv.n_exp).item())):
        times = np.asarray(priv.t_s[0, e], float).ravel()
        data = np.asarray(priv.exp_data[0, e], float)
        q = np.asarray(priv.Q[0, e], float)
        y0 = np.asarray(priv.exp_y0[0, e], float).ravel()
        obs = [
            str(np.asarray(o).ravel()[0]).split("=")[1].strip() for o in np.asarray(priv.obs[0, e]).ravel()
        ]
        data, q = data.reshape(len(times), len(obs)), q.reshape(len(times), len(obs))
        sol = solve_ivp(
            lambda t, y: f(t, y, pars),
            (0.0, times[-1]),
            y0,
            method="LSODA",
            t_eval=times,
            rtol=1e-10,
            atol=1e-10,
        )
        assert sol.success, sol.message
        sim = sol.y[[state_names.index(o) for o in obs]].T
        use = np.isfinite(data) & np.isfinite(q) & (q != 0)
        r = ((sim - data) * q)[use]
        residuals.append(r)
        total += float(np.sum(r**2))
    return total, residuals


@pytest.fixture(scope="module", params=["B2", "B4"])
def imported(request, tmp_path_factory):
    which = request.param
    yaml = write_petab(RAW, which, tmp_path_factory.mktemp("biopredyn") / which)
    return which, load_petab(yaml)


def test_nominal_objective_equals_authors_weighted_least_squares(imported):
    which, pb = imported
    assert len(pb.x_ids) == {"B2": 116, "B4": 117}[which]
    nllh, status = Objective(pb).value(pb.x_nominal)
    assert status == 0
    sigma = np.array([float(v) for v in pb.measurement_df["noiseParameters"]])
    constant = np.sum(np.log(np.sqrt(2 * np.pi) * sigma))
    j_ours = 2 * (nllh - constant)
    j_ref, residuals = authors_objective(which)
    assert j_ours == pytest.approx(j_ref, rel=1e-5), (j_ours, j_ref)
    if which == "B4":
        # Pseudo-data simulated from the nominal parameters: the weighted residuals are at
        # the level of the standard deviations (measured: every datum is the nominal
        # simulation plus or minus half a standard deviation, |r| = 0.5 to 1e-2).
        r = np.concatenate(residuals)
        assert np.all(np.abs(r) < 1.0), np.max(np.abs(r))
        assert np.median(np.abs(r)) == pytest.approx(0.5, abs=1e-3)


def test_import_command_writes_a_loadable_problem(tmp_path):
    out = tmp_path / "b2"
    result = CliRunner().invoke(app, ["import", "biopredyn", "B2", "--from", str(RAW), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pb = load_petab(out / "biopredyn_B2.yaml")
    assert len(pb.x_ids) == 116 and len(pb.meas_y) == 110
    lower, upper = pb.bounds
    assert np.all(lower < pb.x_nominal) and np.all(pb.x_nominal < upper)
    # Writing again into a non-empty folder is refused; nothing else is touched.
    result = CliRunner().invoke(app, ["import", "biopredyn", "B2", "--from", str(RAW), "--out", str(out)])
    assert result.exit_code == 2 and "not empty" in result.stderr
    result = CliRunner().invoke(
        app, ["import", "biopredyn", "B9", "--from", str(RAW), "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "unknown BioPreDyn problem 'B9'" in result.stderr
    assert not (tmp_path / "x").exists()


def test_b4_batch_on_two_threads_finishes(tmp_path):
    # Rodas5 on B4's 35 states factorises with LAPACK (dense LU); two such vmapped
    # computations launched from two threads deadlocked under JAX's asynchronous CPU
    # dispatch (every thread waiting, no CPU in use). A subprocess with a time limit, so
    # that a deadlock fails this test instead of hanging the run.
    script = tmp_path / "batch.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from pe_bench.methods.base import latin_hypercube
            from pe_bench.objective import Objective
            from pe_bench.problems.petab_io import load_petab
            from pe_bench.problems.biopredyn import write_petab
            from pe_bench.simulate import SolverOptions
            import jax
            jax.config.update("jax_enable_x64", True)
            pb = load_petab(write_petab({str(RAW)!r}, "B4", {str(tmp_path / "B4")!r}))
            options = SolverOptions(sensitivity="forward", max_steps=2000)
            objective = Objective(pb, options=options, batch_threads=2, batch_lanes=0)
            values, status = objective.batch(latin_hypercube(20, *pb.bounds, 0))
            print("ok", len(values), int((status == 0).sum()))
            """
        )
    )
    env = dict(os.environ, PE_BENCH_JAX_CACHE="")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[:2] == ["ok", "20"], out.stdout
