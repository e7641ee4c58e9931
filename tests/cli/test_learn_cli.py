"""kinflow-train and kinflow-sample as a user meets them: --help, bad input (one clear line, exit 1),
the shipped decks, the output schema, --resume, rank-count agreement, a non-finite loss, a model
trained on a Langevin run and a conditioned family of runs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
TRAIN = BUILD / "drivers" / "kinflow-train"
SAMPLE = BUILD / "drivers" / "kinflow-sample"
SIMULATE = BUILD / "drivers" / "kinflow-simulate"
MPIEXEC = os.environ.get("KINFLOW_MPIEXEC", "mpiexec")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", KOKKOS_DISABLE_WARNINGS="1", OMP_NUM_THREADS="1")

sys.path.insert(0, str(SRC / "postprocess"))
import kinflow_model  # noqa: E402

pytestmark = pytest.mark.skipif(not TRAIN.exists(), reason="built without LibTorch")


def run(exe, args, ranks=1):
    # -q: no Open MPI banner on a non-zero exit, so stderr holds only what kinflow printed
    cmd = [MPIEXEC, "-q", "-n", str(ranks), "--oversubscribe", str(exe), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)


def write(path, text):
    path.write_text(text)
    return path


def ini(sections):
    return "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for name, keys in sections.items())


def override(keys, lines):
    """keys updated by the `key = value` lines of `lines`."""
    keys = dict(keys)
    for line in lines.splitlines():
        if line.strip():
            k, v = line.split("=", 1)
            keys[k.strip()] = v.strip()
    return keys


def train_deck(tmp_path, model, extra="", name="train.ini", objective="fm", data="builtin:gaussian", steps=60):
    keys = {"objective": objective, "data": data, "builtin_size": 5000, "hidden": 32, "layers": 2, "batch_size": 64,
            "steps": steps, "lr": 2e-3, "model_file": model}
    return write(tmp_path / name, ini({"run": {"seed": 3}, "train": override(keys, extra)}))


def sample_deck(tmp_path, model, out, extra="", name="sample.ini"):
    keys = {"model_file": model, "count": 500, "method": "heun", "nfe": 20}
    return write(tmp_path / name, ini({"run": {"seed": 9}, "sample": override(keys, extra), "output": {"file": out}}))


def positions(path):
    with h5py.File(path, "r") as f:
        return f["snapshots/000000/position"][()]


def kinflow_file(path, snaps, deck="[ks]\nchi = 2\n"):
    """A hand-made kinflow file: snaps = [(position [n, d], id [n]), ...] at times 0, 1, ..."""
    with h5py.File(path, "w") as f:
        f.attrs["producer"] = "test"
        f.attrs["dim"] = np.int32(snaps[0][0].shape[1])
        f.attrs["deck"] = deck
        for i, (pos, ids) in enumerate(snaps):
            g = f.create_group(f"snapshots/{i:06d}")
            g.attrs["time"] = float(i)
            g.attrs["step"] = np.int64(i)
            g["position"] = pos
            g["id"] = ids.astype(np.int64)
    return path


def test_help_documents_every_key():
    r = run(TRAIN, ["--help"])
    assert r.returncode == 0
    for key in ["seed", "objective", "data", "snapshot", "source", "condition", "hidden", "layers", "activation",
                "batch_size", "steps", "lr", "threads", "model_file", "checkpoint_every", "score_model",
                "fp_residual_weight", "teacher", "reflow_pairs", "teacher_nfe"]:
        assert f"\n  {key} = " in r.stdout, key
    assert "--resume" in r.stdout
    r = run(SAMPLE, ["--help"])
    assert r.returncode == 0
    for key in ["seed", "model_file", "count", "method", "nfe", "condition", "file"]:
        assert f"\n  {key} = " in r.stdout, key


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    n = 50
    ids = np.arange(n)
    kinflow_file(tmp_path / "ok.h5", [(rng.normal(size=(n, 2)), ids), (rng.normal(size=(n, 2)), ids)])
    kinflow_file(tmp_path / "dims.h5", [(rng.normal(size=(n, 2)), ids), (rng.normal(size=(n, 3)), ids)])
    kinflow_file(tmp_path / "ids.h5", [(rng.normal(size=(n, 2)), ids), (rng.normal(size=(n, 2)), ids[::-1])])
    kinflow_file(tmp_path / "short.h5", [(rng.normal(size=(n, 2)), ids), (rng.normal(size=(n - 1, 2)), ids[:-1])])
    return tmp_path


# Errors found while reading data run on 2 ranks (one line from rank 0, every rank exits 1);
# deck validation is the same code on any rank count (1 rank: each launch loads LibTorch).
BAD_TRAIN = {
    # name: (deck lines, extra args, substrings of the one-line message)
    "unknown_objective": ("objective = gan", [], ["train.ini", "train.objective", "gan", "fm | otfm | dsm | w2map"]),
    "unknown_builtin": ("data = builtin:moons", [], ["train.ini", "train.data", "builtin:moons"]),
    "missing_file": ("data = /nonexistent/run.h5", [], ["train.ini", "train.data", "/nonexistent/run.h5", "no such file"]),
    "missing_snapshot": ("data = {d}/ok.h5\nsnapshot = 7", [], ["train.data", "ok.h5", "snapshot index 7 out of range"]),
    "missing_source": ("data = {d}/ok.h5\nsource = snapshot:5", [], ["train.data", "snapshot index 5"]),
    # a snapshot whose columns disagree with the file's dim: the reader's schema check
    "dim_mismatch": ("data = {d}/dims.h5\nsnapshot = 1\nsource = snapshot:0", [], ["train.data", "dims.h5", "3 columns", "dim is 2"]),
    "ids_do_not_pair": ("data = {d}/ids.h5\nsnapshot = 1\nsource = snapshot:0", [], ["train.data", "ids do not pair", "row 0"]),
    "counts_do_not_pair": ("data = {d}/short.h5\nsnapshot = 1\nsource = snapshot:0", [], ["train.data", "ids do not pair", "50", "49"]),
    "missing_condition": ("data = {d}/ok.h5\ncondition = ks.beta", [], ["train.data", "ks.beta"]),
    "dsm_uniform": ("objective = dsm\nsource = uniform", [], ["train.ini", "train.source", "uniform", "gaussian"]),
    "bad_activation": ("activation = relu", [], ["train.ini", "train.activation", "relu"]),
    "meanflow_fraction": ("objective = meanflow\nmeanflow_fraction = 1.5", [], ["train.ini", "train.meanflow_fraction", "[0, 1]"]),
    "meanflow_power": ("objective = meanflow\nmeanflow_power = -1", [], ["train.ini", "train.meanflow_power", "[0, 4]"]),
    "flowmap_fraction": ("objective = flowmap\nmeanflow_fraction = -0.1", [], ["train.ini", "train.meanflow_fraction", "[0, 1]"]),
    "reflow_distill_value": ("reflow_distill = yes", [], ["train.ini", "train.reflow_distill", "yes", "true | false"]),
    "reflow_distill_for_fm": ("reflow_distill = true", [], ["train.ini", "train.reflow_distill", "objective = reflow"]),
    "ring_builtin_typo": ("data = builtin:ring", [], ["train.ini", "train.data", "builtin:ring", "builtin:ring_ellipse"]),
    "corrector_for_fm": ("corrector = first.pt", [], ["train.ini", "train.corrector", "first.pt", "w2map"]),
    "corrector_missing": ("objective = w2map\ncorrector = /nonexistent/m.pt", [],
                          ["train.ini", "train.corrector", "/nonexistent/m.pt", "no such file"]),
    "potential_for_fm": ("score_model = potential", [], ["train.ini", "train.score_model", "potential", "dsm"]),
    "fp_weight_negative": ("objective = dsm\nscore_model = potential\nfp_residual_weight = -1", [],
                           ["train.ini", "train.fp_residual_weight", "-1", "[0, 1e6]"]),
    "fp_weight_vector": ("objective = dsm\nfp_residual_weight = 0.1", [], ["train.ini", "train.fp_residual_weight", "potential"]),
    "reflow_without_teacher": ("objective = reflow", [], ["default", "train.teacher", "fm/otfm/reflow"]),  # key not in the deck
    "reflow_missing_teacher": ("objective = reflow\nteacher = /nonexistent/t.pt", [],
                               ["train.ini", "train.teacher", "/nonexistent/t.pt", "no such file"]),
    "cli_batch": ("", ["--train.batch_size=0"], ["command line", "train.batch_size", "'0'"]),
    "resume_without_checkpoint": ("", ["--resume"], ["--resume", "model.pt.ckpt", "no such file"]),
    "unwritable_model": ("model_file = /proc/nope/model.pt", [], ["train.ini", "train.model_file", "/proc/nope/model.pt"]),
    "unwritable_model_h5": ("model_h5 = /proc/nope/model.h5", [], ["train.ini", "train.model_h5", "/proc/nope/model.h5"]),
    "model_h5_is_the_model": ("model_file = out/m.pt\nmodel_h5 = out/m.pt", [], ["train.ini", "train.model_h5", "must differ"]),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_train_bad_input_one_line(tmp_path, bad_dir, case):
    lines, extra, needles = BAD_TRAIN[case]
    model = tmp_path / "out" / "model.pt"
    deck = train_deck(tmp_path, model, lines.format(d=bad_dir))
    r = run(TRAIN, [deck, *extra], ranks=2 if "{d}" in lines or "--resume" in extra else 1)
    assert r.returncode == 1, r.stderr
    out = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(out) == 1, r.stderr
    for n in needles:
        assert n in out[0], (n, out[0])
    assert not model.exists()


@pytest.fixture(scope="module")
def fm_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("fm")
    model = d / "model.pt"
    r = run(TRAIN, [train_deck(d, model), "--quiet"])
    assert r.returncode == 0, r.stderr
    return model


BAD_SAMPLE = {
    "missing_model": ("model_file = /nonexistent/m.pt", [], ["sample.ini", "sample.model_file", "/nonexistent/m.pt", "no such file"]),
    "not_a_model": ("model_file = {deck}", [], ["sample.model_file", "not a kinflow model file"]),
    "condition_count": ("condition = 0.5", [], ["sample.ini", "sample.condition", "0 condition(s)", "1 value(s)"]),
    "sde_for_fm": ("method = euler-maruyama", [], ["sample.ini", "sample.method", "dsm"]),
    "nfe_multiple": ("method = rk4\nnfe = 10", [], ["sample.ini", "sample.nfe", "multiple of 4"]),
    "count_zero": ("count = 0", [], ["sample.count", "snapshot"]),
    "unwritable": ("", ["--output.file=/proc/nope/x.h5"], ["output.file", "/proc/nope/x.h5"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SAMPLE))
def test_sample_bad_input_one_line(tmp_path, fm_model, case):
    lines, extra, needles = BAD_SAMPLE[case]
    out = tmp_path / "s.h5"
    deck = sample_deck(tmp_path, fm_model, out, lines.format(deck=tmp_path / "sample.ini"))
    r = run(SAMPLE, [deck, *extra], ranks=2 if case in ("missing_model", "unwritable") else 1)
    assert r.returncode == 1, r.stderr
    msg = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(msg) == 1, r.stderr
    for n in needles:
        assert n in msg[0], (n, msg[0])
    assert not out.exists()


def test_shipped_decks_train_and_sample(tmp_path):
    # The gaussian-mixture decks as shipped, shortened; 2 ranks train, 2 ranks sample.
    for kind, method, nfe in (("fm", "rk4", 40), ("dsm", "euler-maruyama", 500)):
        model = tmp_path / f"{kind}.pt"
        out = tmp_path / f"{kind}.h5"
        r = run(TRAIN, [SRC / "inputs" / f"train_{kind}_gaussian_mixture.ini", "--train.steps=200",
                        "--train.batch_size=256", f"--train.model_file={model}", "--train.checkpoint_every=100"], ranks=2)
        assert r.returncode == 0, r.stderr
        assert "steps 0 -> 200" in r.stdout and f"wrote {model}" in r.stdout
        assert model.exists() and Path(str(model) + ".ckpt").exists()
        r = run(SAMPLE, [SRC / "inputs" / f"sample_{kind}_gaussian_mixture.ini", f"--sample.model_file={model}",
                         f"--output.file={out}", "--sample.count=1001"], ranks=2)
        assert r.returncode == 0, r.stderr
        assert f"nfe {nfe}" in r.stdout and "samples/s" in r.stdout
        with h5py.File(out, "r") as f:
            attrs = {k: f.attrs[k] for k in f.attrs}
            for k in ("kinflow_version", "producer", "deck", "seed", "mpi_ranks", "dim"):
                assert k in attrs, k
            producer = attrs["producer"].decode() if isinstance(attrs["producer"], bytes) else attrs["producer"]
            deck = attrs["deck"].decode() if isinstance(attrs["deck"], bytes) else attrs["deck"]
            assert producer == "sampler" and attrs["dim"] == 2 and attrs["mpi_ranks"] == 2 and attrs["seed"] == 2
            assert "[sample]" in deck and f"method = {method}" in deck and f"objective = {kind}" in deck
            assert f["snapshots/000000/position"].shape == (1001, 2)
            np.testing.assert_array_equal(f["snapshots/000000/id"][()], np.arange(1001))
            assert f["diagnostics/nfe"][()][0] == nfe
            assert np.all(np.isfinite(f["snapshots/000000/position"][()]))


def test_resume_gives_the_same_model_as_an_uninterrupted_run(tmp_path):
    whole, part = tmp_path / "whole.pt", tmp_path / "part.pt"
    extra = "checkpoint_every = 10\nema = 0.9\n"
    r = run(TRAIN, [train_deck(tmp_path, whole, extra, "a.ini"), "--quiet"], ranks=2)
    assert r.returncode == 0, r.stderr
    deck = train_deck(tmp_path, part, extra, "b.ini")
    r = run(TRAIN, [deck, "--train.stop_after=25"], ranks=2)
    assert r.returncode == 0, r.stderr
    assert "stopped at step 25 of 60" in r.stdout and "--resume" in r.stdout
    assert not part.exists() and Path(str(part) + ".ckpt").exists()
    r = run(TRAIN, [deck, "--resume"], ranks=2)
    assert r.returncode == 0, r.stderr
    assert "steps 25 -> 60" in r.stdout
    for model, out in ((whole, "w.h5"), (part, "p.h5")):
        r = run(SAMPLE, [sample_deck(tmp_path, model, tmp_path / out, name=out + ".ini"), "--quiet"])
        assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(positions(tmp_path / "w.h5"), positions(tmp_path / "p.h5"))  # bit-identical
    # the loss history of the interrupted and resumed run is the uninterrupted one, row for row
    whole_log = (tmp_path / "whole.pt.loss.csv").read_text().splitlines()
    part_log = (tmp_path / "part.pt.loss.csv").read_text().splitlines()
    assert whole_log[0] == "step,loss,lr" and len(whole_log) == 61
    assert part_log == whole_log


def test_same_global_batch_on_one_and_two_ranks(tmp_path):
    # 1 rank x 128 and 2 ranks x 64: the same minibatches; only the gradient sum's order differs.
    outs = []
    for ranks in (1, 2):
        model = tmp_path / f"r{ranks}.pt"
        deck = train_deck(tmp_path, model, f"batch_size = {128 // ranks}", f"t{ranks}.ini")
        r = run(TRAIN, [deck, "--quiet"], ranks=ranks)
        assert r.returncode == 0, r.stderr
        out = tmp_path / f"s{ranks}.h5"
        r = run(SAMPLE, [sample_deck(tmp_path, model, out, name=f"s{ranks}.ini"), "--quiet"])
        assert r.returncode == 0, r.stderr
        outs.append(positions(out))
    # Measured ~1e-6; tolerance 1e-4 in data units (the data have standard deviations ~1).
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-4)


def test_samples_split_over_ranks_agree(tmp_path, fm_model):
    outs = []
    for ranks in (1, 2):
        out = tmp_path / f"s{ranks}.h5"
        r = run(SAMPLE, [sample_deck(tmp_path, fm_model, out, name=f"s{ranks}.ini"), "--quiet"], ranks=ranks)
        assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
        outs.append(positions(out))
    # The same noise (keyed by sample id) and the same arithmetic per row: equal to float32
    # round-off of the matrix products (row blocks of different sizes).
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_nonfinite_loss_stops_with_a_clear_message(tmp_path):
    model = tmp_path / "nan.pt"
    deck = train_deck(tmp_path, model, "checkpoint_every = 1\nlr_schedule = constant\n")
    r = run(TRAIN, [deck, "--train.lr=1e30", "--quiet"], ranks=2)
    assert r.returncode == 1
    msg = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(msg) == 1, r.stderr
    assert "non-finite loss" in msg[0] and "training stopped" in msg[0] and "last good checkpoint" in msg[0], msg[0]
    assert not model.exists() and Path(str(model) + ".ckpt").exists()


def test_model_of_a_langevin_run(tmp_path):
    # A small double-well run (2 ranks), then flow matching from its initial to its final
    # particles with the simulation's coupling, then one sample per initial particle.
    run_file = tmp_path / "dw.h5"
    r = run(SIMULATE, [SRC / "inputs" / "langevin_double_well.ini", f"--output.file={run_file}",
                       "--langevin.particles=4000", "--run.steps=2000", "--output.every=500", "--quiet"], ranks=2)
    assert r.returncode == 0, r.stderr
    model, out = tmp_path / "fm.pt", tmp_path / "s.h5"
    r = run(TRAIN, [SRC / "inputs" / "train_fm_langevin.ini", f"--train.data={run_file}", f"--train.model_file={model}",
                    "--train.steps=2000", "--train.batch_size=256", "--quiet"], ranks=2)
    assert r.returncode == 0, r.stderr
    r = run(SAMPLE, [SRC / "inputs" / "sample_fm_langevin.ini", f"--sample.model_file={model}", f"--output.file={out}",
                     "--quiet"], ranks=2)
    assert r.returncode == 0, r.stderr
    with h5py.File(run_file, "r") as f:
        names = sorted(f["snapshots"])
        x0 = f[f"snapshots/{names[0]}/position"][()][:, 0]
        xT = f[f"snapshots/{names[-1]}/position"][()][:, 0]
        t_final = f[f"snapshots/{names[-1]}"].attrs["time"]
    with h5py.File(out, "r") as f:
        x = f["snapshots/000000/position"][()][:, 0]
        np.testing.assert_array_equal(f["snapshots/000000/id"][()], np.arange(4000))
        assert f["snapshots/000000"].attrs["time"] == pytest.approx(t_final)

    def w2(a, b):  # exact W2 in 1D: the sorted pairing
        return np.sqrt(np.mean((np.sort(a) - np.sort(b)) ** 2))
    # The model's samples are much closer to the final density than the initial particles are
    # (measured 0.025 against 0.22; an untrained model stays near the initial particles).
    assert w2(x, xT) < 0.3 * w2(x0, xT), (w2(x, xT), w2(x0, xT))


def test_one_model_for_a_family_of_runs(tmp_path):
    # Two Ornstein–Uhlenbeck runs at temperatures 0.25 and 1 (stationary variance = temperature),
    # one model conditioned on langevin.temperature; samples at each temperature must have its spread.
    files = []
    for temp in (0.25, 1.0):
        f = tmp_path / f"ou{temp}.h5"
        deck = write(tmp_path / f"ou{temp}.ini", f"""[run]
seed = 4
steps = 300
dt = 0.01
[output]
file = {f}
every = 300
[langevin]
dim = 1
particles = 3000
potential = harmonic
stiffness = 1
temperature = {temp}
init_std = 0.1
""")
        r = run(SIMULATE, [deck, "--quiet"])
        assert r.returncode == 0, r.stderr
        files.append(str(f))
    model = tmp_path / "family.pt"
    deck = train_deck(tmp_path, model, "condition = langevin.temperature\n", data=",".join(files), steps=800)
    r = run(TRAIN, [deck, "--quiet", "--train.builtin_size=1"], ranks=2)
    assert r.returncode == 0, r.stderr
    for temp in (0.25, 1.0):
        out = tmp_path / f"s{temp}.h5"
        r = run(SAMPLE, [sample_deck(tmp_path, model, out, f"condition = {temp}\n", name=f"s{temp}.ini"),
                         "--sample.count=3000", "--quiet"])
        assert r.returncode == 0, r.stderr
        sd = positions(out)[:, 0].std()
        # Standard error of a standard deviation from 3000 draws: 1.3%; tolerance 10%.
        assert sd == pytest.approx(np.sqrt(temp * (1 - np.exp(-6))), rel=0.10), (temp, sd)


def test_model_h5_reproduces_kinflow_sample(tmp_path):
    # MODEL.h5 beside the model file (X.pt -> X.h5, written by rank 0 of 2), and the numpy evaluator
    # in physical units: one Euler step of kinflow-sample from each source particle is
    # start(x0) + velocity(start(x0), 0, cond) (fm, film, a condition, a snapshot source with its own
    # normalisation).
    rng = np.random.default_rng(5)
    n, ids, files = 200, np.arange(200), []
    for chi in (1.0, 3.0):
        x0 = rng.normal(size=(n, 2)) + [1.0, -2.0]
        x1 = chi * x0 + [0.5, 4.0] + 0.1 * rng.normal(size=(n, 2))
        files.append(str(kinflow_file(tmp_path / f"chi{chi}.h5", [(x0, ids), (x1, ids)], deck=f"[ks]\nchi = {chi}\n")))
    model = tmp_path / "film.pt"
    deck = train_deck(tmp_path, model, "snapshot = 1\nsource = snapshot:0\ncondition = ks.chi\ncondition_embedding = film\n"
                      "film_width = 8\nactivation = gelu\nhidden = 16\nbatch_size = 32", data=",".join(files), steps=20)
    r = run(TRAIN, [deck, "--quiet"], ranks=2)
    assert r.returncode == 0, r.stderr
    m = kinflow_model.load(tmp_path / "film.h5")
    assert (m.objective, m.film, m.conditions, m.step) == ("fm", True, ["ks.chi"], 20)
    with h5py.File(tmp_path / "film.h5", "r") as f:
        assert int(f.attrs["mpi_ranks"]) == 2 and int(f.attrs["seed"]) == 3 and "condition_embedding = film" in f.attrs["deck"]
        assert np.abs(f["network/film/weight"][()]).max() > 0  # trained away from the zero initialisation
    out = tmp_path / "s.h5"
    r = run(SAMPLE, [sample_deck(tmp_path, model, out, "count = 0\nmethod = euler\nnfe = 1\ncondition = 2.0"), "--quiet"])
    assert r.returncode == 0, r.stderr
    with h5py.File(files[0], "r") as f:
        x0 = f["snapshots/000000/position"][()]
    y0 = m.start(x0)
    want = y0 + m.velocity(y0, 0.0, [2.0])
    assert np.abs(positions(out) - want).max() < 1e-5 * np.abs(want).max()

    # tfm, MODEL.h5 at train.model_h5: from the first snapshot (t = 0) to sample.time = 1.5 in one step.
    snaps = [(x0 * (1 + 0.3 * k) + k, ids) for k in range(3)]
    data = kinflow_file(tmp_path / "run.h5", snaps)
    model = tmp_path / "tfm.pt"
    deck = train_deck(tmp_path, model, f"objective = tfm\nsnapshot = 1,2\nsource = snapshot:0\nmodel_h5 = {tmp_path}/h5/tfm_model.h5",
                      data=data, steps=10, name="tfm.ini")
    r = run(TRAIN, [deck, "--quiet"])
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "tfm.h5").exists()
    m = kinflow_model.load(tmp_path / "h5" / "tfm_model.h5")
    assert (m.time_origin, m.time_scale) == (0.0, 2.0)
    assert np.allclose(m.start(x0), x0)
    r = run(SAMPLE, [sample_deck(tmp_path, model, out, "count = 0\nmethod = euler\nnfe = 1\ntime = 1.5", name="tfm_s.ini"),
                     "--quiet"])
    assert r.returncode == 0, r.stderr
    want = x0 + 1.5 * m.velocity(x0, 0.0)
    assert np.abs(positions(out) - want).max() < 1e-5 * np.abs(want).max()


@pytest.mark.parametrize("objective,lines", [("meanflow", "meanflow_fraction = 0.5\nmeanflow_power = 0.75"),
                                             ("flowmap", "meanflow_fraction = 0.5")])
def test_jump_models_train_and_sample_in_few_evaluations(tmp_path, objective, lines):
    # A short meanflow (flowmap) run on 2 ranks; kinflow-sample takes nfe jumps (1, 2, 4) and records
    # nfe as the root attribute; MODEL.h5 names the objective with two time inputs; an ODE method is
    # refused with one line.
    model = tmp_path / "mf.pt"
    r = run(TRAIN, [train_deck(tmp_path, model, lines, objective=objective), "--quiet"], ranks=2)
    assert r.returncode == 0, r.stderr
    m = kinflow_model.load(tmp_path / "mf.h5")
    assert m.objective == objective and m.time_inputs == 2
    for nfe in (1, 2, 4):
        out = tmp_path / f"s{nfe}.h5"
        r = run(SAMPLE, [sample_deck(tmp_path, model, out, f"method = euler\nnfe = {nfe}", name=f"s{nfe}.ini")], ranks=2)
        assert r.returncode == 0, r.stderr
        assert f"nfe {nfe} ({nfe} steps)" in r.stdout
        with h5py.File(out, "r") as f:
            assert int(f.attrs["nfe"]) == nfe
            assert f["diagnostics/nfe"][()][0] == nfe
            x = f["snapshots/000000/position"][()]
        assert x.shape == (500, 2) and np.all(np.isfinite(x))
    r = run(SAMPLE, [sample_deck(tmp_path, model, tmp_path / "bad.h5", "method = heun\nnfe = 4", name="bad.ini")])
    assert r.returncode == 1
    msg = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(msg) == 1 and "sample.method" in msg[0] and objective in msg[0], r.stderr


def test_potential_score_model_trains_samples_and_is_curl_free(tmp_path):
    # dsm with a potential score and the Fokker-Planck residual on 2 ranks; kinflow-sample's PF-ODE
    # and reverse SDE both run on the input gradient; kinflow-compare --score-curl finds its
    # Jacobian symmetric (a Hessian) and a vector model's not; MODEL.h5 records the scalar output.
    model = tmp_path / "pot.pt"
    r = run(TRAIN, [train_deck(tmp_path, model, "score_model = potential\nfp_residual_weight = 0.1", objective="dsm",
                               steps=20), "--quiet"], ranks=2)
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "pot.h5", "r") as f:
        assert f.attrs["score_model"] in ("potential", b"potential") and list(f.attrs["layer_widths"])[-1] == 1
    for method, nfe in (("rk4", 8), ("euler-maruyama", 10)):
        out = tmp_path / f"s_{method}.h5"
        r = run(SAMPLE, [sample_deck(tmp_path, model, out, f"method = {method}\nnfe = {nfe}", name=f"{method}.ini")], ranks=2)
        assert r.returncode == 0, r.stderr
        x = positions(out)
        assert x.shape == (500, 2) and np.all(np.isfinite(x))
    vec = tmp_path / "vec.pt"
    r = run(TRAIN, [train_deck(tmp_path, vec, objective="dsm", steps=20, name="vec.ini"), "--quiet"])
    assert r.returncode == 0, r.stderr
    compare = BUILD / "drivers" / "kinflow-compare"
    ratios = {}
    for name, m in (("potential", model), ("vector", vec)):
        js = tmp_path / f"curl_{name}.json"
        r = run(compare, ["--score-curl", m, tmp_path / "s_rk4.h5", "--curl-times", "0.2,0.8", "--max-points", 100,
                          "--json", js])
        assert r.returncode == 0, r.stderr
        ratios[name] = json.loads(js.read_text())["curl_mean"]
    assert ratios["potential"] < 1e-10 and ratios["vector"] > 1e-3, ratios
    r = run(compare, ["--score-curl", tmp_path / "vec.h5", tmp_path / "s_rk4.h5"])
    assert r.returncode == 1 and "not a kinflow model file" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_reflow_trains_on_a_teachers_pairs(tmp_path):
    # An fm teacher, then reflow on 2000 of its (noise, sample) pairs on 2 ranks; the student samples
    # like fm, its MODEL.h5 says reflow; a teacher trained on other data is refused in one line.
    teacher = tmp_path / "teacher.pt"
    r = run(TRAIN, [train_deck(tmp_path, teacher, steps=30, name="t.ini"), "--quiet"])
    assert r.returncode == 0, r.stderr
    student = tmp_path / "student.pt"
    deck = train_deck(tmp_path, student, f"teacher = {teacher}\nreflow_pairs = 2000\nteacher_nfe = 8", objective="reflow",
                      steps=30, name="s.ini")
    r = run(TRAIN, [deck, "--quiet"], ranks=2)
    assert r.returncode == 0, r.stderr
    assert kinflow_model.load(tmp_path / "student.h5").objective == "reflow"
    out = tmp_path / "s.h5"
    r = run(SAMPLE, [sample_deck(tmp_path, student, out), "--quiet"])
    assert r.returncode == 0, r.stderr
    assert np.all(np.isfinite(positions(out)))
    deck = train_deck(tmp_path, tmp_path / "x.pt", f"teacher = {teacher}", objective="reflow", data="builtin:checkerboard",
                      name="x.ini")
    r = run(TRAIN, [deck])
    msg = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1 and len(msg) == 1 and "train.teacher" in msg[0] and "other data" in msg[0], r.stderr


def test_time_gate_generates_the_source_itself_at_the_source_time(tmp_path):
    # train.time_gate: a model of (t, x) from a paired snapshot source whose output is gated by
    # 1 - exp(-t / tau) generates, at the source time, the source particles themselves (to float32
    # round-off of the normalisation), whatever it learned; later times are still transported (here
    # a dilation by 1 + t/2 of snapshot 0, so the spread at t = 2 is twice the source's). The same
    # model without the gate does not reproduce the source at t = 0 (the control: the test can fail).
    rng = np.random.default_rng(5)
    n = 2000
    x0 = rng.standard_normal((n, 2))
    ids = np.arange(n)
    data = kinflow_file(tmp_path / "dilation.h5", [(x0 * (1 + 0.5 * k), ids) for k in range(3)])
    src = kinflow_file(tmp_path / "fresh.h5", [(rng.standard_normal((n, 2)), ids)])
    base = f"data = {data}\nsnapshot = 0,1,2\nsource = snapshot:0\ncondition = time\nbatch_size = 256\n"
    outs = {}
    for name, gate in (("gated", "time_gate = 1\n"), ("plain", "")):
        model = tmp_path / f"{name}.pt"
        r = run(TRAIN, [train_deck(tmp_path, model, base + gate, name=f"{name}.ini", steps=300), "--quiet"])
        assert r.returncode == 0, r.stderr
        for t in (0, 2):
            out = tmp_path / f"{name}{t}.h5"
            r = run(SAMPLE, [sample_deck(tmp_path, model, out, f"condition = {t}\nsource_file = {src}\ncount = 0",
                                         name=f"s{name}{t}.ini"), "--quiet"])
            assert r.returncode == 0, r.stderr
            outs[(name, t)] = positions(out)
    m = kinflow_model.load(tmp_path / "gated.h5")
    assert m.gate_column == 0 and m.gate_scale > 0
    fresh = positions(src)
    scale = np.abs(fresh).max()
    assert np.abs(outs[("gated", 0)] - fresh).max() < 1e-6 * scale
    assert np.abs(outs[("plain", 0)] - fresh).max() > 1e-3 * scale
    # t = 2: spread 2x the source's (300 training steps: tolerance 15 %)
    assert outs[("gated", 2)].std() / fresh.std() == pytest.approx(2.0, rel=0.15)
    # a gate without a time condition is one line
    r = run(TRAIN, [train_deck(tmp_path, tmp_path / "bad.pt", base.replace("condition = time", "condition = ks.chi") + gate
                               + "time_gate = 1\n", name="bad.ini")])
    assert r.returncode == 1
    msg = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(msg) == 1 and "train.time_gate" in msg[0], r.stderr
