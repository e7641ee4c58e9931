"""Tests for postprocess/plot_dsmc.py.

Run: /usr/bin/python3 -m pytest -q tests/postprocess/test_plot_dsmc.py

Synthetic kinflow DSMC files (h5py) exercise the plot for a BKW deck and a mixture, the exact
BKW helpers and the one-line errors. When KINFLOW_BUILD_DIR holds drivers/kinflow-simulate
built with the dsmc engine, tiny real runs of the shipped decks are plotted too, and a run with
1 and 2 threads must write bit-identical files (per-pair/per-group work, counter-based RNG).
"""

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import trapezoid

h5py = pytest.importorskip("h5py")

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1]
POSTPROCESS = SRC / "postprocess"
SCRIPT = POSTPROCESS / "plot_dsmc.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

sys.path.insert(0, str(POSTPROCESS))
import plot_dsmc as pd  # noqa: E402


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=180)


def assert_png(r, out):
    assert r.returncode == 0, r.stderr
    assert Path(out).read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------
# synthetic files
# --------------------------------------------------------------------------

def sample_bkw(rng, n, K):
    """Exact BKW sample (VERIFICATION.md): Gaussian of variance K with probability (5K-3)/(2K),
    else speed sqrt(K) chi_5 in a uniform direction."""
    z = rng.normal(size=(n, 5))
    v = math.sqrt(K) * z[:, :3]
    tail = rng.random(n) >= (5 * K - 3) / (2 * K)
    r5 = np.linalg.norm(z[tail], axis=1)
    r3 = np.linalg.norm(z[tail, :3], axis=1)
    v[tail] = math.sqrt(K) * z[tail, :3] * (r5 / r3)[:, None]
    return v


def dsmc_deck(species="gas", mass="1", kernel="maxwell", init="bkw", units="normalized"):
    return ("[run]\nengine = dsmc\nseed = 1\nsteps = 10\ndt = 0.5\n\n[output]\nfile = x.h5\nevery = 1\n\n"
            f"[dsmc]\nscheme = ntc   # no dt bias\nkernel = {kernel}\ncollision_rate = 1\nspecies = {species}\n"
            f"mass = {mass}\ninit = {init}\nunits = {units}\nbkw_t0 = 5.497744391244931\n")


def write_dsmc(path, deck, times, velocities, species_ids, names, masses=None, producer="dsmc"):
    """Write a file in the kinflow schema with the dsmc engine's diagnostics."""
    masses = masses or [1.0] * len(names)
    with h5py.File(path, "w") as f:
        f.attrs["kinflow_version"] = "0.1.0-test"
        f.attrs["producer"] = producer
        f.attrs["deck"] = deck
        f.attrs["seed"] = np.int64(1)
        f.attrs["mpi_ranks"] = np.int32(1)
        f.attrs["dim"] = np.int32(3)
        diag = {"time": list(times)}
        for i, (t, v) in enumerate(zip(times, velocities)):
            g = f.create_group(f"snapshots/{i:06d}")
            g.attrs["time"] = np.float64(t)
            g.attrs["step"] = np.int64(i)
            g.create_dataset("position", data=v)
            g.create_dataset("velocity", data=v)
            g.create_dataset("id", data=np.arange(len(v), dtype=np.int64))
            g.create_dataset("species", data=species_ids.astype(np.int32))
            for s, name in enumerate(names):
                c = v[species_ids == s] - v[species_ids == s].mean(axis=0)
                Tk = masses[s] * (c * c).mean(axis=0)
                T = Tk.mean()
                c2 = (c * c).sum(axis=1) / T * masses[s]
                for key, val in [(f"temperature_{name}", T), (f"temperature_{name}_x", Tk[0]), (f"temperature_{name}_y", Tk[1]),
                                 (f"temperature_{name}_z", Tk[2]), (f"m4_{name}", (c2 ** 2).mean()), (f"m6_{name}", (c2 ** 3).mean())]:
                    diag.setdefault(key, []).append(val)
            diag.setdefault("temperature", []).append(np.mean([diag[f"temperature_{n}"][-1] for n in names]))
            diag.setdefault("energy", []).append(0.5 * float((v * v).sum()))
            diag.setdefault("collisions", []).append(1000.0 * i)
        for name, vals in diag.items():
            f.create_dataset(f"diagnostics/{name}", data=np.asarray(vals, dtype=np.float64))


@pytest.fixture
def bkw_file(tmp_path):
    rng = np.random.default_rng(3)
    times = [0.0, 2.0, 4.0, 8.0]
    vs = [sample_bkw(rng, 4000, float(pd.bkw_K(pd.BKW_MIN_TIME + t))) for t in times]
    path = tmp_path / "bkw.h5"
    write_dsmc(path, dsmc_deck(), times, vs, np.zeros(4000, dtype=int), ["gas"])
    return path


@pytest.fixture
def mixture_file(tmp_path):
    rng = np.random.default_rng(4)
    times = [0.0, 0.5, 1, 2, 5, 10, 50, 100, 200]
    sp = np.repeat([0, 1], 1000)
    vs = []
    for t in times:
        a = math.exp(-t / 3)
        v = np.concatenate([rng.normal(size=(1000, 3)) * [1 + a, 1, 1], rng.normal(size=(1000, 3)) * 0.1 * np.array([1 + a, 1, 1])])
        vs.append(v)
    path = tmp_path / "mix.h5"
    write_dsmc(path, dsmc_deck("light, heavy", "1, 100", "hard_sphere", "bimaxwellian"), times, vs, sp, ["light", "heavy"], [1.0, 100.0])
    return path


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------

def test_bkw_exact_helpers():
    K0 = float(pd.bkw_K(6 * math.log(2.5)))
    assert K0 == pytest.approx(0.6, abs=1e-14)
    assert pd.bkw_m4(K0) == pytest.approx(12.6)
    assert pd.bkw_m6(K0) == pytest.approx(68.04)
    assert pd.bkw_m4(1.0) == pytest.approx(15) and pd.bkw_m6(1.0) == pytest.approx(105)
    w = np.linspace(0, 15, 20001)
    for K in (0.6, 0.8, 1.0):
        f = pd.bkw_speed_density(w, K)
        assert trapezoid(f, w) == pytest.approx(1.0, abs=1e-9)
        assert trapezoid(w ** 2 * f, w) == pytest.approx(3.0, abs=1e-8)
        assert trapezoid(w ** 4 * f, w) == pytest.approx(float(pd.bkw_m4(K)), abs=1e-7)
        assert trapezoid(w ** 6 * f, w) == pytest.approx(float(pd.bkw_m6(K)), abs=1e-5)
    np.testing.assert_allclose(pd.bkw_speed_density(w, 1.0), pd.maxwell_speed_density(w), atol=1e-15)


def test_sampler_used_here_matches_bkw_moments():
    rng = np.random.default_rng(5)
    K = 0.7
    v = sample_bkw(rng, 200000, K)
    x4 = (v * v).sum(axis=1) ** 2
    assert x4.mean() == pytest.approx(float(pd.bkw_m4(K)), abs=4 * x4.std() / math.sqrt(len(x4)))


def test_bkw_deck_detection():
    import kinflow_h5 as kh
    deck = kh.parse_deck(dsmc_deck())
    assert pd.bkw_params(deck, 1) == (pytest.approx(6 * math.log(2.5)), 1.0)
    assert pd.bkw_params(deck, 2) is None
    assert pd.bkw_params(kh.parse_deck(dsmc_deck(init="maxwellian")), 1) is None
    assert pd.bkw_params(kh.parse_deck(dsmc_deck(kernel="vhs")), 1) is None
    assert pd.k_boltzmann(kh.parse_deck(dsmc_deck(units="si"))) == pytest.approx(1.380649e-23)


def test_plot_bkw_file(bkw_file, tmp_path):
    out = tmp_path / "bkw.png"
    assert_png(run_script(bkw_file, "-o", out), out)
    # default output name
    r = run_script(bkw_file)
    assert_png(r, str(bkw_file)[:-3] + "_dsmc.png")


def test_plot_mixture_file_log_time(mixture_file, tmp_path):
    _, _, diags, names, hist = pd.load(mixture_file)
    assert names == ["light", "heavy"]
    assert len(hist) == 2 and hist[1][0] == pytest.approx(200)
    assert pd._use_log_time(diags["time"], None)
    for flag in ([], ["--linear-time"], ["--log-time"]):
        out = tmp_path / f"mix{len(flag)}{flag[0][2:5] if flag else ''}.png"
        assert_png(run_script(mixture_file, "-o", out, *flag), out)


def test_errors_are_one_line(tmp_path, bkw_file):
    r = run_script(tmp_path / "missing.h5")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "no such file" in r.stderr
    other = tmp_path / "langevin.h5"
    with h5py.File(other, "w") as f:
        f.attrs["kinflow_version"] = "x"
        f.attrs["producer"] = "langevin"
    r = run_script(other)
    assert r.returncode != 0 and "not by the dsmc engine" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_script(bkw_file, "-o", tmp_path / "no" / "dir" / "x.png")
    assert r.returncode != 0 and "does not exist" in r.stderr


# --------------------------------------------------------------------------
# real runs (need a build with the dsmc engine)
# --------------------------------------------------------------------------

BUILD = os.environ.get("KINFLOW_BUILD_DIR")
EXE = Path(BUILD) / "drivers" / "kinflow-simulate" if BUILD else None
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
           KOKKOS_DISABLE_WARNINGS="1")


def have_dsmc():
    if not EXE or not EXE.exists():
        return False
    r = subprocess.run([str(EXE), "--help"], capture_output=True, text=True, env=ENV, timeout=60)
    return r.returncode == 0 and "[dsmc]" in r.stdout


needs_dsmc = pytest.mark.skipif(not have_dsmc(), reason="set KINFLOW_BUILD_DIR to a build with the dsmc engine")


def simulate(deck, out, *extra, ranks=1, threads=None):
    cmd = [str(EXE), str(deck), f"--output.file={out}", "--quiet", *extra]
    mpiexec = os.environ.get("KINFLOW_MPIEXEC") or shutil.which("mpiexec")
    if ranks > 1:
        if not mpiexec:
            pytest.skip("no mpiexec")
        cmd = [mpiexec, "-q", "-n", str(ranks), "--oversubscribe", *cmd]
    env = dict(ENV, OMP_NUM_THREADS=str(threads)) if threads else ENV
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


TINY = {
    "dsmc_bkw": ["--dsmc.particles=3000", "--run.steps=10", "--output.every=5"],
    "dsmc_beams_vss_argon": ["--dsmc.particles=3000", "--run.steps=10", "--output.every=5"],
    "dsmc_mixture_disparate_mass": ["--dsmc.particles=2000", "--run.steps=20", "--output.every=10"],
}


@needs_dsmc
@pytest.mark.parametrize("name", sorted(TINY))
def test_real_tiny_runs_of_shipped_decks(tmp_path, name):
    out = simulate(SRC / "inputs" / f"{name}.ini", tmp_path / f"{name}.h5", *TINY[name], ranks=2)
    with h5py.File(out, "r") as f:
        assert f.attrs["producer"] in ("dsmc", b"dsmc")
        g = f["snapshots/000000"]
        n = g["id"].shape[0]
        np.testing.assert_array_equal(g["id"][()], np.arange(n))
        np.testing.assert_array_equal(g["position"][()], g["velocity"][()])
        e = f["diagnostics/energy"][()]
        np.testing.assert_allclose(e, e[0], rtol=1e-12)
    png = tmp_path / f"{name}.png"
    assert_png(run_script(out, "-o", png), png)


@needs_dsmc
@pytest.mark.parametrize("scheme", ["ntc", "nanbu_babovsky"])
def test_real_run_independent_of_thread_count(tmp_path, scheme):
    extra = ["--dsmc.particles=5000", "--run.steps=20", "--output.every=10", f"--dsmc.scheme={scheme}", "--run.dt=0.05"]
    deck = SRC / "inputs" / "dsmc_mixture_disparate_mass.ini"
    a = simulate(deck, tmp_path / "t1.h5", *extra, threads=1)
    b = simulate(deck, tmp_path / "t2.h5", *extra, threads=2)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names = []
        fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert "diagnostics/collisions" in names
        for n in names:
            np.testing.assert_array_equal(fa[n][()], fb[n][()], err_msg=n)
