"""postprocess/kinflow_model.py against LibTorch: for every objective, activation and condition
embedding, without and with conditions, the numpy evaluator of MODEL.h5 reproduces the network
output and the field kinflow-sample integrates to 1e-6 (relative to the output scale) on random
inputs (build/tests/kinflow-model-reference writes the models and LibTorch's outputs); and its
command line (--help, evaluation, one-line errors for missing or damaged files)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
REFERENCE = BUILD / "tests" / "kinflow-model-reference"
SCRIPT = SRC / "postprocess" / "kinflow_model.py"
sys.path.insert(0, str(SRC / "postprocess"))
import kinflow_model  # noqa: E402

TOL = 1e-6
OBJECTIVES = ["fm", "otfm", "dsm", "w2map", "tfm", "meanflow"]
ACTIVATIONS = ["silu", "gelu", "tanh"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    if not REFERENCE.exists():
        pytest.skip("built without LibTorch (no kinflow-model-reference)")
    out = tmp_path_factory.mktemp("models")
    r = subprocess.run([str(REFERENCE), str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return {p.name[:-3]: p for p in sorted(out.glob("*.h5")) if not p.name.endswith(".ref.h5")}


def close(got, want):
    """max |got - want| relative to the output scale (at least 1)."""
    scale = max(1.0, float(np.max(np.abs(want))))
    return float(np.max(np.abs(got - want))) / scale


def test_every_objective_activation_and_embedding_is_covered(cases):
    for obj in OBJECTIVES:
        for act in ACTIVATIONS:
            for emb in ["concat", "film"]:
                for c in [0, 2]:
                    if (obj, emb, c) != ("w2map", "film", 0):  # refused by kinflow-train (no time, no condition)
                        assert f"{obj}_{act}_{emb}_c{c}" in cases


def test_numpy_network_equals_libtorch(cases):
    worst = {}
    for name, path in cases.items():
        m = kinflow_model.load(path)
        with h5py.File(str(path)[:-3] + ".ref.h5", "r") as f:
            ref = {k: f[k][()] for k in f}
            t0 = float(f.attrs["t0"])
            if "gap0" in f.attrs:
                ref["gap0"] = float(f.attrs["gap0"])
        x_hat = ref["x_hat"].astype(np.float64)
        cond = ref["cond_hat"] if m.cond_dim else None
        meanflow = m.objective == "meanflow"
        gap, gap0 = (ref["gap"], ref["gap0"]) if meanflow else (0.0, 0.0)
        # the network with per-row times, gaps and conditions (MLP::forward)
        d1 = close(m.network(x_hat, ref["t"], cond, gap), ref["forward"])
        # one time and condition row: the sampler's folded pass (MLPWorkspace::evaluate)
        d2 = close(m.network(x_hat, t0, ref["cond_row"] if m.cond_dim else None, gap0), ref["evaluate"])
        # the physical quantities at x = mean + std x_hat, raw conditions, against what kinflow-sample integrates
        x = m.denormalise(x_hat)
        raw = ref["cond_raw"] if m.cond_dim else None
        field = ref["field"].astype(np.float64)
        if m.objective == "w2map":
            x0 = x_hat if m.source_mean.size == 0 else m.source_mean + m.source_std * x_hat
            d3 = close(m.map(x0, raw), m.denormalise(field))
            d4 = close(m.evaluate(x0, cond=raw), m.denormalise(field))
        elif meanflow:  # the average velocity over [t0, t0 + gap0], and two jumps of kinflow-sample
            d3 = close(m.average_velocity(x, t0, t0 + gap0, raw), m.std * field)
            d4 = close(m.evaluate(x, t0 + gap0, raw, quantity="average_velocity", s=t0), m.std * field)
            x0 = x_hat if m.source_mean.size == 0 else m.source_mean + m.source_std * x_hat
            d4 = max(d4, close(m.jumps(x0, 2, raw), m.denormalise(ref["jumps2"].astype(np.float64))))
        elif m.objective == "tfm":
            t_phys = m.time_origin + t0 * m.time_scale
            d3 = close(m.velocity(x, t_phys, raw), m.std * field / m.time_scale)
            d4 = close(m.evaluate(x, t_phys, raw), m.std * field / m.time_scale)
        else:
            d3 = close(m.velocity(x, t0, raw), m.std * field)
            d4 = d3
            if m.objective == "dsm":  # field = beta/2 (x_hat + score_hat): score_hat = 2 field / beta - x_hat
                beta = m.beta_min + (1 - t0) * (m.beta_max - m.beta_min)
                score_hat = 2 * field / beta - x_hat.astype(np.float32)
                d4 = close(m.score(x, t0, raw) * m.std, score_hat)
        worst[name] = max(d1, d2, d3, d4)
    bad = {k: v for k, v in worst.items() if v > TOL}
    assert not bad, bad
    assert len(worst) == 73  # 69 + 4 gated (train.time_gate) fm and meanflow models
    assert sum(kinflow_model.load(p).gate_column >= 0 for p in cases.values()) == 4


def test_start_and_coordinates(cases):
    m = kinflow_model.load(cases["fm_silu_concat_c2"])  # a snapshot source with its own normalisation
    x0 = np.array([[0.3, -1.2]]) if m.dim == 2 else np.array([[0.3, -1.2, 0.7]])
    x0_hat = (x0 - m.source_mean) / m.source_std
    assert np.allclose(m.start(x0), m.mean + m.std * x0_hat)
    assert np.allclose(m.normalise(m.denormalise(x0)), x0)
    tfm = kinflow_model.load(cases["tfm_tanh_film_c0"])  # one normalisation: a flow starts at its source point
    x0 = np.ones((3, tfm.dim))
    assert np.allclose(tfm.start(x0), x0)


def test_wrong_inputs_are_clear(cases):
    m = kinflow_model.load(cases["fm_gelu_film_c2"])
    x = np.zeros((4, m.dim))
    with pytest.raises(kinflow_model.ModelError, match="condition"):
        m.velocity(x, 0.5)
    with pytest.raises(kinflow_model.ModelError, match="model dim"):
        m.velocity(np.zeros((4, m.dim + 1)), 0.5, [1.0, 2.0])
    with pytest.raises(kinflow_model.ModelError, match="dsm"):
        m.score(x, 0.5, [1.0, 2.0])
    with pytest.raises(kinflow_model.ModelError, match="w2map"):
        m.map(x, [1.0, 2.0])


def cli(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_cli_help():
    r = cli("--help")
    assert r.returncode == 0
    for word in ["MODEL.h5", "--points", "--quantity", "--t", "--cond", "--out"]:
        assert word in r.stdout


def test_cli_evaluates_npy_and_kinflow_files(cases, tmp_path):
    path = cases["tfm_silu_concat_c2"]
    m = kinflow_model.load(path)
    r = cli(path)
    assert r.returncode == 0 and "objective tfm" in r.stdout and "ks.chi, dsmc.kappa" in r.stdout
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, m.dim))
    np.save(tmp_path / "x.npy", x)
    r = cli(path, "--points", tmp_path / "x.npy", "--t", 1.0, "--cond", "0.5,-1", "--out", tmp_path / "v.npy")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "v.npy"), m.velocity(x, 1.0, [0.5, -1]))
    with h5py.File(tmp_path / "run.h5", "w") as f:
        f["snapshots/000000/position"] = x[:3]
        f["snapshots/000001/position"] = x
    r = cli(path, "--points", tmp_path / "run.h5", "--t", 1.0, "--cond", "0.5,-1")  # last snapshot, printed
    assert r.returncode == 0, r.stderr
    assert np.allclose(np.loadtxt(r.stdout.splitlines()), m.velocity(x, 1.0, [0.5, -1]), rtol=1e-8, atol=1e-8)


def test_cli_one_line_errors(cases, tmp_path):
    (tmp_path / "damaged.h5").write_bytes(cases["fm_silu_concat_c0"].read_bytes()[:600])
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["producer"] = "ks"
    with h5py.File(tmp_path / "partial.h5", "w") as f:
        f.attrs["kinflow_model_h5"] = np.int64(1)
    for path, words in [(tmp_path / "missing.h5", ["missing.h5", "no such file"]),
                        (tmp_path / "damaged.h5", ["damaged.h5", "not an HDF5 file"]),
                        (tmp_path / "other.h5", ["other.h5", "not a kinflow MODEL.h5"]),
                        (tmp_path / "partial.h5", ["partial.h5", "damaged kinflow MODEL.h5"])]:
        r = cli(path)
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kinflow_model.py: "), r.stderr
        for w in words:
            assert w in lines[0]
        with pytest.raises(kinflow_model.ModelError):
            kinflow_model.load(path)
    r = cli(cases["dsm_tanh_concat_c0"], "--points", tmp_path / "nope.npy", "--t", 0.5)
    assert r.returncode == 1 and "nope.npy" in r.stderr and "no such file" in r.stderr
