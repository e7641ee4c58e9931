"""kinflow-compare on real kinflow files: identical sets are at distance 0, a shifted set at the
shift, bad input is one clear line."""
import json
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
SIM = BUILD / "drivers" / "kinflow-simulate"
CMP = BUILD / "drivers" / "kinflow-compare"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", KOKKOS_DISABLE_WARNINGS="1")


def simulate(tmp_path, name, *extra):
    out = tmp_path / name
    r = subprocess.run([str(SIM), str(SRC / "inputs" / "langevin_ou.ini"), f"--output.file={out}", "--quiet",
                        "--langevin.particles=400", "--run.steps=20", *extra], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    return out


def compare(*args):
    return subprocess.run([str(CMP), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300)


def test_identical_and_shifted_sets(tmp_path):
    a = simulate(tmp_path, "a.h5")
    b = simulate(tmp_path, "b.h5", "--langevin.center=1,0,0", "--langevin.init_mean=3,-1,0.5", "--langevin.stiffness=0")
    js = tmp_path / "m.json"
    r = compare(a, a, "--json", js, "--max-points=300")
    assert r.returncode == 0, r.stderr
    m = json.loads(js.read_text())
    assert m["w2_exact"] == 0.0 and m["mean_error"] == 0.0 and m["sliced_w2"] == 0.0
    # b at snapshot 0 is a's snapshot 0 shifted by (1, 0, 0): same seed, init_mean + 1 on x.
    r = compare(a, b, "--snapshot-a=0", "--snapshot-b=0", "--json", js, "--max-points=400", "--save-attrs")
    assert r.returncode == 0, r.stderr
    m = json.loads(js.read_text())
    assert abs(m["w2_exact"] - 1.0) < 1e-9       # translation: the identity pairing is optimal
    assert abs(m["mean_error"] - 1.0) < 1e-9
    assert m["cov_error_fro"] < 1e-9
    assert 1.0 <= m["w2_sinkhorn"] < 1.05       # entropic plan costs at least the exact one
    assert m["sliced_w2"] < m["w2_exact"] + 1e-12
    with h5py.File(b, "r") as f:
        assert abs(f.attrs["metric_w2_exact"] - 1.0) < 1e-9
    # Displacement interpolation between a set and its translate: the translate by s (1, 0, 0),
    # for s inside [0, 1] and beyond (extrapolation); its W2 to A is then s.
    for s in (0.25, 1.5):
        mid = tmp_path / f"mid{s}.h5"
        r = compare(a, b, "--snapshot-a=0", "--snapshot-b=0", "--max-points=400", f"--interpolate={s}",
                    f"--interpolate-out={mid}", "--no-sinkhorn")
        assert r.returncode == 0, r.stderr
        with h5py.File(a, "r") as fa, h5py.File(mid, "r") as fm:
            xa = np.asarray(fa["snapshots/000000/position"])
            xm = np.asarray(fm["snapshots/000000/position"])
        assert xm.shape == xa.shape
        assert np.allclose(np.sort(xm[:, 0]), np.sort(xa[:, 0]) + s, atol=1e-9)
        assert np.allclose(np.sort(xm[:, 1]), np.sort(xa[:, 1]), atol=1e-12)
        r = compare(a, mid, "--snapshot-a=0", "--json", js, "--max-points=400", "--no-sinkhorn")
        assert r.returncode == 0, r.stderr
        assert abs(json.loads(js.read_text())["w2_exact"] - s) < 1e-9


def test_bad_input(tmp_path):
    a = simulate(tmp_path, "a.h5")
    one_d = tmp_path / "c.h5"
    r = subprocess.run([str(SIM), str(SRC / "inputs" / "langevin_double_well.ini"), f"--output.file={one_d}", "--quiet",
                        "--langevin.particles=50", "--run.steps=2"], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    for args, needle in [((a, one_d), "dimension mismatch"), ((a, tmp_path / "missing.h5"), "missing.h5"),
                         ((a, a, "--snapshot-b=99"), "snapshot index 99"), ((a,), "usage"),
                         ((a, a, "--max-points=1"), "max-points"), ((a, a, "--bootstrap=1"), "bootstrap")]:
        r = compare(*args)
        assert r.returncode != 0
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and needle in lines[0], r.stderr


def test_bootstrap_standard_error_matches_the_spread_of_independent_runs(tmp_path):
    """The bootstrap SE of W2 must match the actual run-to-run spread: 10 independent pairs of
    OU runs (different seeds, 400 points) give W2 values whose standard deviation is compared with
    the median bootstrap SE (20 resamples) of those pairs. The bootstrap is conservative here
    (resampled sets carry duplicates, which widen W2's spread; measured 1.9x the actual spread for
    two samples of one law, the hardest case); it must be neither below 0.7x nor above 3x (the
    spread of a 10-value standard deviation alone is about +-25 %). --no-sinkhorn drops that metric."""
    w2, se = [], []
    for i in range(10):
        a = simulate(tmp_path, f"a{i}.h5", f"--run.seed={100 + i}")
        b = simulate(tmp_path, f"b{i}.h5", f"--run.seed={200 + i}")
        js = tmp_path / f"m{i}.json"
        r = compare(a, b, "--json", js, "--max-points=400", "--bootstrap=20", "--no-sinkhorn", f"--seed={i}")
        assert r.returncode == 0, r.stderr
        m = json.loads(js.read_text())
        assert "w2_sinkhorn" not in m and m["mean_error_se"] > 0
        w2.append(m["w2_exact"])
        se.append(m["w2_exact_se"])
    spread, typical = float(np.std(w2, ddof=1)), float(np.median(se))
    print(f"W2 over 10 independent pairs: mean {np.mean(w2):.4f}, std {spread:.4f}; median bootstrap SE {typical:.4f}")
    assert 0.7 < typical / spread < 3.0
