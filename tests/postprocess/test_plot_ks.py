"""Tests for postprocess/plot_ks.py (Keller-Segel density snapshots and m2 with the virial lines).

Synthetic kinflow files are written with h5py. When KINFLOW_BUILD_DIR is set and
$KINFLOW_BUILD_DIR/drivers/kinflow-simulate exists, tiny real KS decks are run through it
(a 2D run that collapses and stops early, a 3D run with Kolmogorov flow) and plotted.

Run: /usr/bin/python3 -m pytest -q tests/postprocess/test_plot_ks.py
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

HERE = os.path.dirname(os.path.abspath(__file__))
POSTPROCESS = os.path.normpath(os.path.join(HERE, "..", "..", "postprocess"))
PLOT_KS = os.path.join(POSTPROCESS, "plot_ks.py")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

BUILD = os.environ.get("KINFLOW_BUILD_DIR")
EXE = Path(BUILD) / "drivers" / "kinflow-simulate" if BUILD else None
HAVE_EXE = EXE is not None and EXE.is_file()


def ks_deck(dim, n, mass, chi=1.0, mu=1.0, delta=0.05, init="gaussian", init_std=1.0,
            flow="none", blowup_fraction=0.1):
    return (
        "[run]\nengine = ks\nseed = 3\nsteps = 100\ndt = 0.001\n\n"
        "[output]\nfile = out/x.h5\nevery = 10\n\n"
        f"[ks]\ndim = {dim}   # inline comment\nparticles = {n}\nmass = {mass!r}\nchi = {chi}\n"
        f"mu = {mu}\ndelta = {delta}\ninit = {init}\ninit_std = {init_std}\nflow = {flow}\n"
        f"flow_amplitude = 1\nadaptive_dt = false\nblowup_fraction = {blowup_fraction}\n")


def write_ks_file(path, dim, deck, times, positions, diags=None, producer="ks"):
    with h5py.File(path, "w") as f:
        f.attrs["kinflow_version"] = "0.1.0"
        f.attrs["producer"] = producer
        f.attrs["deck"] = deck
        f.attrs["seed"] = np.int64(3)
        f.attrs["mpi_ranks"] = np.int32(1)
        f.attrs["dim"] = np.int32(dim)
        sg = f.create_group("snapshots")
        for i, (t, x) in enumerate(zip(times, positions)):
            g = sg.create_group(f"{i:06d}")
            g.attrs["time"] = float(t)
            g.attrs["step"] = np.int64(i * 10)
            g.create_dataset("position", data=np.asarray(x, dtype=np.float64))
            g.create_dataset("id", data=np.arange(len(x), dtype=np.int64))
        dg = f.create_group("diagnostics")
        dg.create_dataset("time", data=np.asarray(times, dtype=np.float64))
        for name, vals in (diags or {}).items():
            dg.create_dataset(name, data=np.asarray(vals, dtype=np.float64))


def gaussian_ks(tmp_path, dim, mass, sigma0, rate, n=1500, k=8, name="ks.h5", with_diags=True,
                collapse=False):
    """Positions whose m2 follows m2(0) + rate t (per-axis variance shrinking or growing)."""
    rng = np.random.default_rng(dim)
    times = np.linspace(0.0, 0.02 if rate < 0 else 1.0, k)
    m2 = 2 * sigma0 ** 2 * mass * dim / 2 + rate * times
    pos = [rng.normal(0.0, math.sqrt(max(v, 1e-6) / (mass * dim)), (n, dim)) for v in m2]
    diags = None
    if with_diags:
        core = np.linspace(0.001, 0.12 if collapse else 0.01, k)
        diags = {"mass": np.full(k, mass), "second_moment": m2, "virial_rate": np.full(k, rate),
                 "core_fraction": core, **{f"com_{j}": np.zeros(k) for j in range(dim)}}
    deck = ks_deck(dim, n, mass, init_std=sigma0, delta=0.01)
    path = tmp_path / name
    write_ks_file(path, dim, deck, times, pos, diags)
    return path


def run_script(*args):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, PLOT_KS, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def assert_ok(proc, expected):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(expected)
    data = Path(expected).read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_MAGIC


def assert_clean_error(proc, needle=None):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], proc.stderr
    if needle:
        assert needle in lines[0]


# ---- synthetic files ------------------------------------------------------------------------

def test_supercritical_2d_default_output(tmp_path):
    mass = 10 * math.pi
    h5 = gaussian_ks(tmp_path, 2, mass, math.sqrt(1 / 200), 4 * mass * (1 - mass / (8 * math.pi)),
                     collapse=True)
    assert_ok(run_script(h5), h5.with_name(h5.stem + "_ks.png"))


def test_subcritical_2d_selection_and_output(tmp_path):
    mass = 4 * math.pi
    h5 = gaussian_ks(tmp_path, 2, mass, 1.0, 2 * mass)
    out = tmp_path / "sel.png"
    assert_ok(run_script(h5, "-o", out, "--snapshots", "0,2,-1"), out)
    out = tmp_path / "one.png"
    assert_ok(run_script(h5, "-o", out, "--snapshots", "5"), out)


def test_3d_projections(tmp_path):
    h5 = gaussian_ks(tmp_path, 3, 10.0, 0.5, 3.0, name="k3.h5")
    assert_ok(run_script(h5), h5.with_name("k3_ks.png"))


def test_m2_from_snapshots_without_diagnostics(tmp_path):
    h5 = gaussian_ks(tmp_path, 2, 4 * math.pi, 1.0, 10.0, name="nodiag.h5", with_diags=False)
    assert_ok(run_script(h5, "-o", tmp_path / "nd.png"), tmp_path / "nd.png")


def test_bad_selection_and_bad_files(tmp_path):
    h5 = gaussian_ks(tmp_path, 2, 4 * math.pi, 1.0, 10.0)
    out = tmp_path / "x.png"
    assert_clean_error(run_script(h5, "-o", out, "--snapshots", "0,99"), "99")
    assert_clean_error(run_script(h5, "-o", out, "--snapshots", "a"))
    assert not out.exists()
    assert_clean_error(run_script(tmp_path / "missing.h5"), "missing.h5")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("x", data=np.arange(3.0))
    assert_clean_error(run_script(plain), "not a kinflow file")
    one_d = tmp_path / "one_d.h5"
    write_ks_file(one_d, 1, "[ks]\ndim = 1\n", [0.0], [np.zeros((10, 1))])
    assert_clean_error(run_script(one_d), "dim")
    assert_clean_error(run_script(h5, "-o", tmp_path / "no" / "such" / "dir.png"), "does not exist")


# ---- real runs ------------------------------------------------------------------------------

REAL_2D = """[run]
engine = ks
seed = 5
steps = 3000
dt = 1e-5
[output]
file = {out}
every = 40
[ks]
dim = 2
particles = 300
mass = 31.41592653589793
delta = 0.002
init_std = 0.07071067811865475
adaptive_dt = true
blowup_fraction = 0.1
blowup_check_every = 5
"""

REAL_3D = """[run]
engine = ks
seed = 6
steps = 30
dt = 2e-3
[output]
file = {out}
every = 10
[ks]
dim = 3
particles = 200
mass = 10
mu = 0.1
delta = 0.05
init_std = 0.5
flow = kolmogorov
flow_amplitude = 2
adaptive_dt = true
exchange = ring
"""


def simulate(tmp_path, text, extra=()):
    deck = tmp_path / "deck.ini"
    deck.write_text(text)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", KOKKOS_DISABLE_WARNINGS="1")
    mpiexec = os.environ.get("KINFLOW_MPIEXEC")
    cmd = ([mpiexec, "-q", "-n", "1"] if mpiexec else []) + [str(EXE), str(deck), "--quiet", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)


@pytest.mark.skipif(not HAVE_EXE, reason="set KINFLOW_BUILD_DIR to a build with drivers/kinflow-simulate")
def test_real_2d_collapse_run_stops_cleanly_and_plots(tmp_path):
    out = tmp_path / "out" / "ks2d.h5"
    r = simulate(tmp_path, REAL_2D.format(out=out))
    assert r.returncode == 0, r.stderr
    assert "collapse to the blob scale at t = " in r.stdout
    assert out.is_file() and not Path(str(out) + ".tmp").exists()
    with h5py.File(out, "r") as f:
        assert f.attrs["producer"] in ("ks", b"ks")
        d = {k: f["diagnostics"][k][()] for k in f["diagnostics"]}
        snaps = sorted(f["snapshots"])
        last = f["snapshots"][snaps[-1]]
        assert last.attrs["step"] < 3000  # stopped early
        assert np.all(np.isfinite(last["position"][()]))
        assert last.attrs["time"] == pytest.approx(d["time"][-1])
        assert d["core_fraction"][-1] >= 0.1
        assert np.all(np.diff(d["time"]) > 0)
        assert d["mass"] == pytest.approx(np.full(len(d["mass"]), 10 * math.pi), rel=1e-14)
        t_stop = d["time"][-1]
    assert 0.0 < t_stop < 0.01  # before the Gaussian blow-up bound
    png = tmp_path / "ks2d.png"
    assert_ok(run_script(out, "-o", png), png)


@pytest.mark.skipif(not HAVE_EXE, reason="set KINFLOW_BUILD_DIR to a build with drivers/kinflow-simulate")
def test_real_3d_kolmogorov_run_plots(tmp_path):
    out = tmp_path / "out" / "ks3d.h5"
    r = simulate(tmp_path, REAL_3D.format(out=out))
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as f:
        assert int(f.attrs["dim"]) == 3
        assert len(f["snapshots"]) == 4
        assert {"second_moment", "virial_rate", "virial_increment", "max_density", "min_pair_distance",
                "core_fraction", "com_2"} <= set(f["diagnostics"])
    png = tmp_path / "ks3d.png"
    assert_ok(run_script(out, "-o", png), png)


@pytest.mark.skipif(not HAVE_EXE, reason="set KINFLOW_BUILD_DIR to a build with drivers/kinflow-simulate")
@pytest.mark.parametrize("override,needles", [
    ("--ks.dim=4", ["command line", "ks.dim", "'4'"]),
    ("--ks.delta=0", ["command line", "ks.delta", "'0'"]),
    ("--ks.flow=cellular", ["command line", "ks.flow", "cellular", "dim = 2"]),
    # the bad key is run.dt, from the deck: the message names the deck file and the bound
    ("--ks.adaptive_dt=false", ["deck.ini", "run.dt", "'0.002'", "dt <= 0.000102026", "delta/4", "adaptive_dt"]),
    ("--ks.mesh_cells=8", ["command line", "ks.mesh_cells", "'8'"]),
])
def test_real_bad_input_one_line(tmp_path, override, needles):
    out = tmp_path / "out" / "bad.h5"
    r = simulate(tmp_path, REAL_3D.format(out=out), [override])
    assert r.returncode != 0
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    for s in needles:
        assert s in lines[0], lines[0]
    assert not out.exists()
