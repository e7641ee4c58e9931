"""Tests for the kinflow post-processing scripts (postprocess/).

Run: /usr/bin/python3 -m pytest -q tests/postprocess

Set KINFLOW_TEST_H5=/path/to/run.h5 to also run both scripts on a real file
produced by the simulator.
"""

import os
import subprocess
import sys

import numpy as np
from scipy.integrate import trapezoid
import pytest

h5py = pytest.importorskip("h5py")

HERE = os.path.dirname(os.path.abspath(__file__))
POSTPROCESS = os.path.normpath(os.path.join(HERE, "..", "..", "postprocess"))
PLOT_MOMENTS = os.path.join(POSTPROCESS, "plot_moments.py")
PLOT_DENSITY = os.path.join(POSTPROCESS, "plot_density.py")
SCRIPTS = [PLOT_MOMENTS, PLOT_DENSITY]

sys.path.insert(0, POSTPROCESS)
import kinflow_h5 as kh  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------
# synthetic kinflow files
# --------------------------------------------------------------------------

def make_deck(dim, particles, potential="harmonic", dynamics="overdamped",
              init="gaussian", stiffness="1", center="0", temperature="1",
              interaction="none", strength="0", init_mean="0", init_std="1",
              steps=100, dt=0.01, every=10):
    # inline comments on purpose: the deck parser must strip them
    return (
        "[run]\n"
        "engine = langevin   # the engine\n"
        "seed = 42\n"
        f"steps = {steps}\n"
        f"dt = {dt}\n"
        "\n"
        "[output]\n"
        "file = out.h5\n"
        f"every = {every}\n"
        "\n"
        "[langevin]\n"
        f"dim = {dim}\n"
        f"particles = {particles}\n"
        f"dynamics = {dynamics}\n"
        f"potential = {potential}  # V(x)\n"
        f"stiffness = {stiffness}\n"
        f"center = {center}\n"
        f"temperature = {temperature}\n"
        "friction = 1\n"
        f"interaction = {interaction}\n"
        f"interaction_strength = {strength}\n"
        f"init = {init}\n"
        f"init_mean = {init_mean}\n"
        f"init_std = {init_std}\n"
        "init_file = \n"
    )


def write_kinflow(path, dim, deck, times, positions, velocities=None,
                  extra_diags=None, bytes_attrs=False, producer="langevin"):
    """Write a file following the kinflow schema. positions: list of [N, dim]."""
    def s(x):
        return np.bytes_(x.encode()) if bytes_attrs else x

    with h5py.File(path, "w") as f:
        f.attrs["kinflow_version"] = s("0.1.0-test")
        f.attrs["producer"] = s(producer)
        f.attrs["deck"] = s(deck)
        f.attrs["seed"] = np.int64(42)
        f.attrs["mpi_ranks"] = np.int32(1)
        f.attrs["dim"] = np.int32(dim)
        snaps = f.create_group("snapshots")
        diag = {"time": []}
        for k in range(dim):
            diag[f"mean_{k}"] = []
            diag[f"variance_{k}"] = []
        if velocities is not None:
            diag["kinetic_energy"] = []
        for i, (t, x) in enumerate(zip(times, positions)):
            g = snaps.create_group(f"{i:06d}")
            g.attrs["time"] = np.float64(t)
            g.attrs["step"] = np.int64(round(t / 0.01))
            g.create_dataset("position", data=np.asarray(x, dtype=np.float64))
            g.create_dataset("id", data=np.arange(len(x), dtype=np.int64))
            diag["time"].append(t)
            for k in range(dim):
                diag[f"mean_{k}"].append(x[:, k].mean())
                diag[f"variance_{k}"].append(x[:, k].var())
            if velocities is not None:
                v = np.asarray(velocities[i], dtype=np.float64)
                g.create_dataset("velocity", data=v)
                diag["kinetic_energy"].append(0.5 * np.sum(v * v) / len(v))
        dg = f.create_group("diagnostics")
        for name, vals in diag.items():
            dg.create_dataset(name, data=np.asarray(vals, dtype=np.float64))
        for name, vals in (extra_diags or {}).items():
            dg.create_dataset(name, data=np.asarray(vals, dtype=np.float64))


@pytest.fixture
def ou3d_file(tmp_path):
    """3-D OU (with mean-field interaction) sampled from the exact law."""
    dim, n = 3, 2000
    theta, kappa, D = 1.0, 0.5, 1.0
    c = np.array([0.0, 0.0, 0.0])
    mu0 = np.array([2.0, 0.0, -1.0])
    s0 = 0.5
    deck = make_deck(dim, n, stiffness=theta, temperature=D, center="0,0,0",
                     interaction="harmonic", strength=kappa,
                     init_mean="2,0,-1", init_std=s0)
    rng = np.random.default_rng(1)
    times = np.linspace(0.0, 3.0, 11)
    pos = []
    for t in times:
        x = np.empty((n, dim))
        for k in range(dim):
            m, v = kh.ou_exact(t, theta, D, c[k], mu0[k], s0, kappa=kappa)
            x[:, k] = rng.normal(m, np.sqrt(v), n)
        pos.append(x)
    path = tmp_path / "ou3d.h5"
    write_kinflow(path, dim, deck, times, pos)
    return path


@pytest.fixture
def dw1d_file(tmp_path):
    """1-D double well; positions sampled from the Gibbs density at the end."""
    dim, n, k, T = 1, 4000, 1.0, 0.5
    deck = make_deck(dim, n, potential="double_well", stiffness=k, temperature=T,
                     init_mean="0", init_std="0.3")
    rng = np.random.default_rng(2)
    # rejection sampling from exp(-V/T) (max 1 at x = +-1)
    xs = []
    while len(xs) < n:
        y = rng.uniform(-2.5, 2.5, 4 * n)
        acc = rng.uniform(size=y.size) < np.exp(-k * (y * y - 1) ** 2 / T)
        xs.extend(y[acc].tolist())
    gibbs = np.array(xs[:n]).reshape(-1, 1)
    times = [0.0, 0.5, 1.0, 5.0]
    pos = [rng.normal(0.0, 0.3, (n, 1)), 0.5 * rng.normal(0.0, 0.3, (n, 1)) + 0.5 * gibbs,
           gibbs[rng.permutation(n)] * 0.9, gibbs]
    vel = [rng.normal(size=(n, 3)) for _ in times]  # exercise kinetic_energy
    path = tmp_path / "dw1d.h5"
    write_kinflow(path, dim, deck, times, pos, velocities=vel, bytes_attrs=True)
    return path


@pytest.fixture
def f2d_file(tmp_path):
    """2-D file from a non-OU producer with an extra diagnostic."""
    dim, n = 2, 1500
    deck = "[run]\nengine = sampler\nseed = 7\n\n[sampler]\ndim = 2\n"
    rng = np.random.default_rng(3)
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    pos = [rng.normal([t, 0.0], [1.0, 0.5 + 0.1 * t], (n, 2)) for t in times]
    path = tmp_path / "f2d.h5"
    write_kinflow(path, dim, deck, times, pos, producer="sampler",
                  extra_diags={"acceptance": np.linspace(0.2, 0.4, len(times))})
    return path


# --------------------------------------------------------------------------
# helpers for running the scripts
# --------------------------------------------------------------------------

def run_script(script, *args, cwd=None):
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([sys.executable, script, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def assert_png(path):
    assert os.path.isfile(path), f"{path} not produced"
    data = open(path, "rb").read()
    assert len(data) > 1000
    assert data[:8] == PNG_MAGIC


def assert_ok(proc, expected_out):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(expected_out)
    assert_png(expected_out)


def assert_clean_error(proc):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "error" in lines[0]
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------
# script tests
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["ou3d_file", "dw1d_file", "f2d_file"])
def test_plot_moments_default_output(fixture, request):
    h5 = request.getfixturevalue(fixture)
    expected = h5.with_name(h5.stem + "_moments.png")
    assert_ok(run_script(PLOT_MOMENTS, h5), expected)


@pytest.mark.parametrize("fixture", ["ou3d_file", "dw1d_file", "f2d_file"])
def test_plot_density_default_output(fixture, request):
    h5 = request.getfixturevalue(fixture)
    expected = h5.with_name(h5.stem + "_density.png")
    assert_ok(run_script(PLOT_DENSITY, h5), expected)


def test_explicit_output_and_snapshot_selection(ou3d_file, tmp_path):
    out = tmp_path / "sub_moments.png"
    assert_ok(run_script(PLOT_MOMENTS, ou3d_file, "-o", out), out)
    out = tmp_path / "sel_density.png"
    assert_ok(run_script(PLOT_DENSITY, ou3d_file, "-o", out,
                         "--snapshots", "0,3,-1"), out)
    out = tmp_path / "one_density.png"
    assert_ok(run_script(PLOT_DENSITY, ou3d_file, "-o", out, "--snapshots", "10"), out)


def test_bad_snapshot_selection(ou3d_file, tmp_path):
    out = tmp_path / "x.png"
    assert_clean_error(run_script(PLOT_DENSITY, ou3d_file, "-o", out,
                                  "--snapshots", "0,99"))
    assert_clean_error(run_script(PLOT_DENSITY, ou3d_file, "-o", out,
                                  "--snapshots", "a,b"))
    assert not out.exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_missing_file(script, tmp_path):
    proc = run_script(script, tmp_path / "does_not_exist.h5")
    assert_clean_error(proc)
    assert "does_not_exist.h5" in proc.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_plain_hdf5_file(script, tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(10.0))
        f.attrs["something"] = "else"
    proc = run_script(script, path)
    assert_clean_error(proc)
    assert "not a kinflow file" in proc.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_not_hdf5_file(script, tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("this is not hdf5\n")
    assert_clean_error(run_script(script, path))


@pytest.mark.parametrize("script", SCRIPTS)
def test_kinflow_file_without_data(script, tmp_path):
    path = tmp_path / "empty_run.h5"
    with h5py.File(path, "w") as f:
        f.attrs["kinflow_version"] = "0.1.0"
        f.attrs["producer"] = "langevin"
        f.attrs["dim"] = np.int32(2)
    assert_clean_error(run_script(script, path))


@pytest.mark.skipif(not os.environ.get("KINFLOW_TEST_H5"),
                    reason="set KINFLOW_TEST_H5 to a simulator output file")
@pytest.mark.parametrize("script,suffix", [(PLOT_MOMENTS, "_moments.png"),
                                           (PLOT_DENSITY, "_density.png")])
def test_real_simulator_file(script, suffix, tmp_path):
    real = os.environ["KINFLOW_TEST_H5"]
    out = tmp_path / ("real" + suffix)
    assert_ok(run_script(script, real, "-o", out), out)


# --------------------------------------------------------------------------
# helper-module unit tests
# --------------------------------------------------------------------------

def test_parse_deck_inline_comments():
    deck = kh.parse_deck(
        "# leading comment\n"
        "[run]\n"
        "engine = langevin   # which engine\n"
        "seed = 42 ; another comment style\n"
        "\n"
        "[langevin]\n"
        "Center = 1, 2,3  # vector\n"
        "init_file = \n"
        "ratio = 50%\n")
    assert deck["run"]["engine"] == "langevin"
    assert deck["run"]["seed"] == "42"
    assert deck["langevin"]["center"] == "1, 2,3"
    assert deck["langevin"]["init_file"] == ""
    assert deck["langevin"]["ratio"] == "50%"  # no interpolation
    assert kh.deck_get(deck, "langevin", "init_file", "dflt") == "dflt"
    assert kh.deck_get(deck, "nosection", "x") is None


def test_parse_deck_bytes_and_no_header():
    deck = kh.parse_deck(b"a = 1\n[s]\nb = 2\n")
    assert deck[""]["a"] == "1"
    assert deck["s"]["b"] == "2"
    assert kh.parse_deck(None) == {}


def test_to_str_handles_bytes_and_numpy():
    assert kh.to_str(b"langevin") == "langevin"
    assert kh.to_str(np.bytes_(b"ks")) == "ks"
    assert kh.to_str("dsmc") == "dsmc"
    assert kh.to_str(np.int32(3)) == "3"
    assert kh.to_str(np.array(b"x")) == "x"


def test_parse_vector_broadcast():
    np.testing.assert_array_equal(kh.parse_vector("2", 3), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(kh.parse_vector("1, 2,3", 3), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(kh.parse_vector(" -0.5 ", 1), [-0.5])
    np.testing.assert_array_equal(kh.parse_vector(1.5, 2), [1.5, 1.5])
    with pytest.raises(ValueError):
        kh.parse_vector("1,2", 3)
    with pytest.raises(ValueError):
        kh.parse_vector("", 3)


def test_is_ou_deck():
    assert kh.is_ou_deck(kh.parse_deck(make_deck(3, 10)))
    assert not kh.is_ou_deck(kh.parse_deck(make_deck(3, 10, potential="double_well")))
    assert not kh.is_ou_deck(kh.parse_deck(make_deck(3, 10, dynamics="underdamped")))
    assert not kh.is_ou_deck(kh.parse_deck(make_deck(3, 10, init="uniform")))
    assert kh.is_double_well_deck(kh.parse_deck(make_deck(1, 10, potential="double_well")))


def test_ou_params_from_deck():
    deck = kh.parse_deck(make_deck(3, 10, stiffness="2", center="1,0,-1",
                                   interaction="harmonic", strength="0.5",
                                   init_mean="2,0,0", init_std="0.5"))
    p = kh.ou_params(deck, 3)
    np.testing.assert_array_equal(p["theta"], [2, 2, 2])
    np.testing.assert_array_equal(p["kappa"], [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(p["c"], [1, 0, -1])
    np.testing.assert_array_equal(p["mu0"], [2, 0, 0])
    np.testing.assert_array_equal(p["sigma0"], [0.5, 0.5, 0.5])
    # strength ignored without harmonic interaction
    deck = kh.parse_deck(make_deck(2, 10, interaction="none", strength="3"))
    np.testing.assert_array_equal(kh.ou_params(deck, 2)["kappa"], [0, 0])


@pytest.mark.parametrize("kappa", [0.0, 0.7])
def test_ou_exact_limits(kappa):
    theta, D, c, mu0, s0 = 1.3, 0.8, -0.5, 2.0, 0.4
    m, v = kh.ou_exact(0.0, theta, D, c, mu0, s0, kappa=kappa)
    assert m == pytest.approx(mu0)
    assert v == pytest.approx(s0 ** 2)
    m, v = kh.ou_exact(1e3, theta, D, c, mu0, s0, kappa=kappa)
    assert m == pytest.approx(c)
    assert v == pytest.approx(D / (theta + kappa))
    # vectorised in t
    m, v = kh.ou_exact(np.array([0.0, 1.0, 2.0]), theta, D, c, mu0, s0, kappa=kappa)
    assert m.shape == v.shape == (3,)


def test_ou_exact_pure_diffusion():
    t = np.array([0.0, 1.0, 2.5])
    m, v = kh.ou_exact(t, 0.0, 0.5, 0.0, 1.0, 0.3)
    np.testing.assert_allclose(m, 1.0)
    np.testing.assert_allclose(v, 0.09 + 2 * 0.5 * t)
    # theta + kappa = 0 exactly, and nearly 0 (continuity)
    _, v0 = kh.ou_exact(t, 0.4, 0.5, 0.0, 1.0, 0.3, kappa=-0.4)
    np.testing.assert_allclose(v0, 0.09 + t)
    _, v1 = kh.ou_exact(t, 1e-12, 0.5, 0.0, 1.0, 0.3)
    np.testing.assert_allclose(v1, 0.09 + t, rtol=1e-9)


def test_ou_exact_matches_euler_maruyama():
    """Cross-check the formula (with mean-field interaction) by simulation."""
    rng = np.random.default_rng(11)
    n, dt, steps = 20000, 2e-3, 500
    theta, kappa, D, c, mu0, s0 = 1.0, 0.5, 0.7, 0.3, 2.0, 0.5
    x = rng.normal(mu0, s0, n)
    for _ in range(steps):
        x = (x - theta * (x - c) * dt - kappa * (x - x.mean()) * dt
             + np.sqrt(2 * D * dt) * rng.normal(size=n))
    m, v = kh.ou_exact(steps * dt, theta, D, c, mu0, s0, kappa=kappa)
    assert x.mean() == pytest.approx(float(m), abs=0.03)
    assert x.var() == pytest.approx(float(v), rel=0.05)


def test_gibbs_double_well_normalised():
    x = np.linspace(-4, 4, 20001)
    for k, T in [(1.0, 1.0), (1.0, 0.1), (5.0, 2.0)]:
        rho = kh.gibbs_double_well(x, k, T)
        assert trapezoid(rho, x) == pytest.approx(1.0, rel=1e-6)
        # symmetric, maxima at the wells
        np.testing.assert_allclose(rho, rho[::-1])
        assert kh.gibbs_double_well(1.0, k, T) > kh.gibbs_double_well(0.0, k, T)
    assert kh.gibbs_double_well(x, 1.0, 0.0) is None


def test_file_helpers(ou3d_file, dw1d_file):
    with kh.open_kinflow(ou3d_file) as f:
        attrs = kh.load_root_attrs(f)
        assert attrs["producer"] == "langevin"
        assert attrs["dim"] == "3"
        assert kh.get_dim(f) == 3
        snaps = kh.list_snapshots(f)
        assert [s["index"] for s in snaps] == list(range(11))
        assert snaps[-1]["time"] == pytest.approx(3.0)
        assert kh.read_positions(f, snaps[0]).shape == (2000, 3)
        diags = kh.read_diagnostics(f)
        assert set(diags) >= {"time", "mean_0", "variance_2"}
        deck = kh.load_deck(f)
        assert deck["langevin"]["interaction"] == "harmonic"
    with kh.open_kinflow(dw1d_file) as f:  # bytes attributes
        attrs = kh.load_root_attrs(f)
        assert attrs["producer"] == "langevin"
        assert kh.load_deck(f)["langevin"]["potential"] == "double_well"
    assert kh.default_output("a/b/run.h5", "_moments.png") == "a/b/run_moments.png"
    assert kh.component_sort_key("mean_10") > kh.component_sort_key("mean_2")


def test_open_kinflow_errors(tmp_path):
    with pytest.raises(kh.KinflowError, match="no such file"):
        kh.open_kinflow(tmp_path / "nope.h5")
    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f.attrs["x"] = 1
    with pytest.raises(kh.KinflowError, match="not a kinflow file"):
        kh.open_kinflow(p)
