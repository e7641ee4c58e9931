"""Pipeline 4 (normal shock, issue 16's generative tie-in) end to end at CI size: spatial DSMC
shocks at Mach 2, 3, 4 (a coarse grid, few particles, dt = 5 ns), one fm model of the aligned rows
(xi, v_x, v_perp) conditioned on shock.mach, generated at the unseen Mach 3.5 and compared with a
fresh DSMC run there.

Asserted (numbers independent of the code under test where they are exact):
* the simulations are the shocks asked for: the fresh run's downstream plateau (xi > 5) holds the
  Rankine-Hugoniot n2/n1 = 3.213 and T2/T1 = 4.688 of M = 3.5 (gamma = 5/3) within
  8 % (a coarse, short run; the verification deck meets RH to 0.1 %, README), n upstream 1
  within 5 % (measured: n 2 %, T 1 % off RH; upstream n 1.03);
* the aligned training files record the Mach number the model is conditioned on;
* the learned conditional beats the nearest training Mach on the temperature profile by more than
  3 combined standard errors (the nearest runs' downstream plateaus differ from M = 3.5's by
  ~20 %, far beyond the noise), and every metric has its SE and its floor;
* bad shock inputs are one-line errors.
"""
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from pipeline_support import SRC, needs_train, pipeline

DECK = SRC / "inputs" / "pipeline_shock.ini"

pytestmark = needs_train

TINY = ["simulate.dsmc.cells=40,1,1", "simulate.dsmc.particles=1500", "simulate.run.steps=600",
        "simulate.dsmc.average_from=200", "simulate.output.every=40", "simulate.run.dt=5e-9",
        "train.steps=1500", "generate.count=40000", "compare.profile_bins=16"]
GLOBAL_BATCH = 1024  # train.batch_size = GLOBAL_BATCH / ranks: the same minibatches at any rank count


def rankine_hugoniot(m):
    """n2/n1, T2/T1 for gamma = 5/3 (VERIFICATION.md), written out independently of the pipeline."""
    return 4 * m * m / (m * m + 3), (5 * m * m - 1) * (m * m + 3) / (16 * m * m)


def run_tiny(d, ranks):
    sets = [a for s in TINY + [f"train.batch_size={GLOBAL_BATCH // ranks}"] for a in ("--set", s)]
    r = pipeline(DECK, "--out", d, "--ranks", ranks, "--quiet", *sets)
    assert r.returncode == 0, r.stderr
    return d, json.loads((d / "summary.json").read_text())


@pytest.fixture(scope="module")
def shock(tmp_path_factory):
    return run_tiny(tmp_path_factory.mktemp("shock"), 1)


def test_shock_runs_are_the_rankine_hugoniot_shocks(shock):
    d, s = shock
    p = s["problem"]
    assert p["mach_test"] == 3.5 and p["mach_test"] not in p["mach_train"] and p["condition"] == "shock.mach"
    n_rh, t_rh = rankine_hugoniot(p["mach_test"])
    xi = np.asarray(s["profiles"]["xi"])
    down = xi > 5
    for key, exact in (("n", n_rh), ("T", t_rh)):
        plateau = float(np.mean(np.asarray(s["profiles"]["simulated"][key])[down]))
        assert abs(plateau / exact - 1) < 0.08, (key, plateau, exact)
    # upstream: the density (the temperature rises ahead of it, several lambda_1 upstream of the
    # density midpoint at M = 3.5: no T plateau inside the window)
    upstream = float(np.mean(np.asarray(s["profiles"]["simulated"]["n"])[xi < -5]))
    assert abs(upstream - 1) < 0.05, upstream
    for path, mach in zip(s["files"]["aligned"], p["mach_train"]):
        with h5py.File(path, "r") as f:
            deck = f.attrs["deck"]
            deck = deck.decode() if isinstance(deck, bytes) else deck
            assert f"[shock]\nmach = {mach:.17g}\n" in deck
            rows = np.asarray(f["snapshots/000000/position"])
            assert rows.shape[1] == 3 and np.abs(rows[:, 0]).max() <= p["window"]


def test_shock_learned_conditional_beats_the_nearest_training_mach(shock):
    _, s = shock
    g, b = s["metrics"]["generated"], s["baselines"]
    for d in (g, b["floor"], b["nearest_training_mach"], b["interpolation"]):
        for key in ("n_profile_error", "T_profile_error", "w2_mid_vx"):
            assert np.isfinite(d[key]) and d[f"{key}_se"] > 0, (key, d)
    near = b["nearest_training_mach"]
    assert near["mach"] in (3.0, 4.0)
    gap = (near["T_profile_error"] - g["T_profile_error"]) / np.hypot(near["T_profile_error_se"], g["T_profile_error_se"])
    assert gap > 3, (g, near)
    assert s["acceptance"]["T_profile_error_nearest_minus_generated_in_se"] == pytest.approx(gap, rel=1e-3)


def test_shock_two_ranks_give_the_same_result(shock, tmp_path):
    """The pipeline at 2 ranks (every driver call): the spatial DSMC runs are bit-identical for any
    rank count and the trainer draws the same global minibatches, so every metric agrees with the
    1-rank run (to the summary's 6 digits; a reduction-order difference in the optimizer's
    gradient sum may move the last ones)."""
    _, s2 = run_tiny(tmp_path, 2)
    _, s1 = shock
    assert s2["problem"]["midpoints"] == s1["problem"]["midpoints"]  # the same simulations
    for key, v in s1["metrics"]["generated"].items():
        assert s2["metrics"]["generated"][key] == pytest.approx(v, rel=1e-3), key
    for key, v in s1["baselines"]["floor"].items():
        assert s2["baselines"]["floor"][key] == pytest.approx(v, rel=1e-6), key


def test_shock_report(shock):
    d, s = shock
    r = subprocess.run([sys.executable, str(SRC / "postprocess" / "report.py"), str(d), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (d / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{s['metrics']['generated']['T_profile_error']:.4g}" in (d / "report.html").read_text()


@pytest.mark.parametrize("case", ["mach_test_in_training", "one_mach", "subsonic", "mach_in_ks", "window_in_ks",
                                  "nfe", "not_a_shock_deck"])
def test_shock_bad_input_is_one_line(tmp_path, case):
    deck = DECK
    extra = {"mach_test_in_training": ["--set", "simulate.mach_test=3"],
             "one_mach": ["--set", "simulate.mach_train=3"],
             "subsonic": ["--set", "simulate.mach_test=0.5"],
             "mach_in_ks": ["--set", "simulate.mach_test=3"],
             "window_in_ks": ["--set", "compare.window=3"],
             "nfe": ["--set", "nfe.objectives=fm"],
             "not_a_shock_deck": ["--set", "simulate.deck=inputs/dsmc_bkw.ini"]}[case]
    if case in ("mach_in_ks", "window_in_ks"):
        deck = SRC / "inputs" / "pipeline_ks_aggregation.ini"
    r = pipeline(deck, "--out", tmp_path / "run", "--quiet", *extra)
    assert r.returncode == 1, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kinflow-pipeline: error:"), r.stderr
    expect = {"mach_test_in_training": "not a training Mach", "one_mach": "at least two",
              "subsonic": "mach_test", "mach_in_ks": "simulate.mach_test: only the shock pipeline",
              "window_in_ks": "compare.window: only the shock pipeline", "nfe": "[nfe]",
              "not_a_shock_deck": "space = grid"}[case]
    assert expect in lines[0]
    assert not (tmp_path / "run" / "summary.json").exists()
