"""The three pipelines end to end at CI size (pipeline/kinflow_pipeline.py with the shipped pipeline
decks and --set overrides to tiny sizes), each asserting that the learned samples beat a baseline
by more than the noise, plus postprocess/report.py on the runs' files and the pipeline's bad-input
errors.

Baselines (all measured in the same run, against simulations whose seeds no training run used):
* KS: the nearest training run (same time, nearest chi): the best learned generator's W2 to the
  fresh simulation must be below it by more than 3 combined standard errors; both learned maps
  also well below the fresh run's initial particles (< 0.6x), with m2 closer than the initial m2.
  The floor (a second simulation at the unseen chi), the displacement interpolation and every SE
  must be present.
* Fokker-Planck: W2 of the initial particles to the time-T particles (< 0.5x for every sampler, and
  at every snapshot time for the time-conditioned ODE samplers).
* Boltzmann: a time-blind model (the m4 of all snapshots pooled): the generated m4(t) must have a
  smaller mean error against the exact BKW curve by more than 3 standard errors.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline_support import PIPELINE, REPORT, SRC, needs_train, pipeline

pytestmark = needs_train

TINY = {  # KS at a quarter of the deck's particles and short training; FP and BKW at the deck's data
    # and training size (the W2 of a bimodal 1D marginal and m4 need ~10^4-10^5 samples to resolve),
    # with fewer sampler steps / generation times
    "ks_aggregation": [f"simulate.ks.particles={2048}", "train.hidden=64", "train.w2map.steps=1200",
                       "train.w2map.batch_size=256", "train.fm.steps=1500", "train.fm.batch_size=512",
                       "sample.fm.nfe=20", "compare.max_points=2048", "train.tfm.steps=1500",
                       "train.tfm.batch_size=512", "sample.tfm.nfe=20",
                       # the deck's chi = 3 collapses near t = 0.15 in some runs of 2048 particles
                       # (2 of 16 measured); 2.75 does not
                       "simulate.chi_extrapolate=2.75",
                       # two floor runs per tested chi: the floor's mean and the runs' spread
                       "compare.floor_runs=2",
                       # NFE table: fm and meanflow at 1 and 100 evaluations, w2map's one
                       "nfe.objectives=fm,meanflow,w2map", "nfe.counts=1,100", "train.meanflow.steps=1500",
                       "train.meanflow.batch_size=512"],
    "fokker_planck": ["sample.dsm_sde.nfe=200"],
    "boltzmann": ["generate.times=5", "compare.max_points=1000", "train.steps=3000",
                  "nfe.objectives=fm", "nfe.counts=1,4", "nfe.times=2",
                  # a two-model ensemble generator and a floor over three DSMC runs
                  "generate.ensemble=2", "compare.floor_runs=3"],
}
TINY_KS_PARTICLES = 2048
DECKS = {"ks_aggregation": "pipeline_ks_aggregation.ini", "fokker_planck": "pipeline_fokker_planck.ini",
         "boltzmann": "pipeline_boltzmann.ini"}



@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each pipeline once, tiny, shared by the tests below."""
    out = {}

    def get(kind):
        if kind not in out:
            d = tmp_path_factory.mktemp(kind)
            sets = [a for s in TINY[kind] for a in ("--set", s)]
            r = pipeline(SRC / "inputs" / DECKS[kind], "--out", d, "--quiet", *sets)
            assert r.returncode == 0, r.stderr
            out[kind] = (d, json.loads((d / "summary.json").read_text()), r.stdout)
        return out[kind]

    return get


def test_ks_aggregation_learned_generator_beats_the_nearest_training_run(runs):
    d, s, _ = runs("ks_aggregation")
    m, b = s["metrics"], s["baselines"]
    assert s["problem"]["chi_test"] not in s["problem"]["chi_train"]
    assert s["problem"]["particles"] == TINY_KS_PARTICLES  # --set simulate.ks.particles reached the engine
    assert s["problem"]["condition"] == "ks.chi,time"
    # every W2 has its standard error, and the floor (two independent simulations) is there
    assert s["problem"]["objectives"] == ["w2map", "fm", "tfm"]
    assert s["problem"]["conditions"] == {"w2map": "ks.chi,time", "fm": "ks.chi,time", "tfm": "ks.chi"}
    for case in (s, s["extrapolation"]):
        sets = [case["metrics"][k] for k in ("w2map", "fm", "tfm")] + [case["baselines"][k] for k in
                ("floor", "nearest_training_chi", "displacement_interpolation", "initial")]
        for x in sets:
            assert x["w2"] > 0 and x["w2_se"] > 0 and x["m2_se"] > 0 and x["peak_density_se"] > 0, x
    # the best learned generator beats "reuse the nearest training run" by more than 3 standard errors
    best = min(("w2map", "fm", "tfm"), key=lambda k: m[k]["w2"])
    gap = b["nearest_training_chi"]["w2"] - m[best]["w2"]
    se = float(np.hypot(b["nearest_training_chi"]["w2_se"], m[best]["w2_se"]))
    print(f"KS CI size: {best} W2 {m[best]['w2']:.4f} ± {m[best]['w2_se']:.4f}; floor {b['floor']['w2']:.4f}; "
          f"nearest {b['nearest_training_chi']['w2']:.4f}; interpolation {b['displacement_interpolation']['w2']:.4f}")
    assert gap > 3 * se, (m[best], b["nearest_training_chi"])
    for k in ("w2map", "fm", "tfm"):
        assert m[k]["w2"] < 0.6 * b["initial"]["w2"], (k, m[k], b)
        assert abs(m[k]["m2"] - m["simulated"]["m2"]) < abs(b["initial"]["m2"] - m["simulated"]["m2"]), (k, m[k])
    # aggregation happened: the simulated peak density is well above the initial one
    assert m["simulated"]["peak_density"] > 3 * b["initial"]["peak_density"]
    t = s["timings"]
    assert t["simulate_test_s"] > 0 and t["train_w2map_s"] > 0 and t["speedup_w2map"] > 0
    for name in ("test", "floor", "interpolation"):
        assert Path(s["files"][name]).is_file()
    # every driver call is recorded, re-runnable: training runs, test + floor, extrapolation test + floor
    assert (d / "commands.sh").read_text().count("kinflow-simulate") == len(s["problem"]["chi_train"]) + 6
    # compare.floor_runs = 2: the floor is the mean W2 of the test run to both floor runs, and a
    # fresh simulation's m2 and peak density carry the spread of the three runs
    for case in (s, s["extrapolation"]):
        fl, sim, acc = case["baselines"]["floor"], case["metrics"]["simulated"], case["acceptance"]
        assert fl["runs"] == 2 and len(fl["w2_runs"]) == 2 and fl["w2_first"] == fl["w2_runs"][0]
        assert fl["w2"] == pytest.approx(np.mean(fl["w2_runs"]), rel=1e-4) and fl["w2_se"] > 0
        assert len(set(fl["w2_runs"])) == 2  # two different runs
        bm = case["metrics"][acc["best"]]
        for key in ("m2", "peak_density"):
            vals = sim[f"{key}_runs"]
            assert len(vals) == 3 and vals[0] == pytest.approx(sim[key], rel=1e-4)
            assert sim[f"{key}_runs_mean"] == pytest.approx(np.mean(vals), rel=1e-4)
            assert sim[f"{key}_runs_sd"] == pytest.approx(np.std(vals, ddof=1), rel=1e-3) and sim[f"{key}_runs_sd"] > 0
            assert acc[f"{key}_within_3sd_runs"] == bool(
                abs(bm[key] - sim[key]) <= 3 * np.hypot(bm[f"{key}_se"], sim[f"{key}_runs_sd"]))
            assert acc[f"{key}_vs_runs_mean_in_se"] == pytest.approx(
                (bm[key] - np.mean(vals)) / np.hypot(bm[f"{key}_se"], np.std(vals, ddof=1) / np.sqrt(3)), rel=1e-3)


def test_ks_aggregation_nfe_table(runs):
    """Every (objective, count) of the NFE table has its W2 and SE; an Euler step of fm from the
    initial particles is far from the fresh run, 100 steps are below the nearest-training baseline
    and at least 3 SE better than one step; the one-step acceptance is evaluated (not asserted: it
    is the issue's research target, reported in the README)."""
    _, s, _ = runs("ks_aggregation")
    nfe, b = s["nfe"], s["baselines"]
    assert nfe["objectives"] == ["fm", "meanflow", "w2map"] and nfe["counts"] == [1, 100]
    by = {(r["objective"], r["nfe"]): r for r in nfe["rows"]}
    assert set(by) == {("fm", 1), ("fm", 100), ("meanflow", 1), ("meanflow", 100), ("w2map", 1)}
    for r in nfe["rows"]:
        assert r["w2"] > 0 and r["w2_se"] > 0 and r["sample_wall_s"] > 0, r
        if "generate_wall_s" in r:  # kinflow-generate's copy of the same samples, without LibTorch
            assert r["generate_max_rel_diff"] < 2e-5 and r["generate_wall_s"] > 0, r
        assert r["w2_over_floor"] == pytest.approx(r["w2"] / b["floor"]["w2"], rel=1e-4)
    fm1, fm100 = by[("fm", 1)], by[("fm", 100)]
    print(f"KS CI size NFE: " + ", ".join(f"{k} {n}: {r['w2']:.4f} ± {r['w2_se']:.4f}" for (k, n), r in by.items()))
    assert fm100["w2"] < b["nearest_training_chi"]["w2"]
    assert fm1["w2"] - fm100["w2"] > 3 * np.hypot(fm1["w2_se"], fm100["w2_se"]), (fm1, fm100)
    # meanflow's jumps learn the path's average velocity: one jump well below the initial particles
    assert by[("meanflow", 1)]["w2"] < 0.6 * b["initial"]["w2"]
    acc = nfe["acceptance"]
    assert acc["fm_reference_nfe"] == 100 and acc["best_one_step"] in ("fm", "meanflow")
    assert acc["ratio_to_fm"] == pytest.approx(by[(acc["best_one_step"], 1)]["w2"] / fm100["w2"], rel=1e-4)
    assert Path(nfe["models"]["meanflow"]).is_file() and nfe["train_s"]["meanflow"] > 0


def test_boltzmann_nfe_table(runs):
    _, s, _ = runs("boltzmann")
    nfe = s["nfe"]
    assert nfe["counts"] == [1, 4] and len(nfe["times"]) == 2
    rows = {r["nfe"]: r for r in nfe["rows"]}
    assert set(rows) == {1, 4}
    for r in rows.values():
        assert r["m4_mean_abs_error"] >= 0 and r["m4_mean_abs_error_se"] > 0
        assert r["ratio_to_dsmc"] == pytest.approx(r["m4_mean_abs_error"] / nfe["dsmc_m4_mean_abs_error"], rel=1e-3)


def test_fokker_planck_samplers_beat_the_initial_state(runs):
    _, s, _ = runs("fokker_planck")
    base = s["baselines"]["initial"]["w2"]
    for k in ("dsm_ode", "dsm_sde", "fm_ode"):
        assert s["metrics"][k]["w2"] < 0.5 * base, (k, s["metrics"][k], base)
    assert s["ode_sde_gap"]["w2"] < 0.5 * base
    assert s["baselines"]["floor"]["w2_se"] > 0 and s["metrics"]["fm_ode"]["w2_se"] > 0
    # One model conditioned on time generates every snapshot time. The W2 of a bimodal 1D marginal
    # at 4096 points fluctuates with the mode masses (floor SE ~0.03, measured), so: every time below
    # 0.75x the initial-state W2, the mean over times below 0.5x it, and on average at the floor
    # (mean of W2 - floor within 4 standard errors of that mean).
    pt = s["per_time"]
    assert len(pt) == len(s["problem"]["times"]) >= 5
    for row in pt:
        assert row["w2_floor"] > 0 and row["w2_floor_se"] > 0
        assert max(row["w2_dsm_ode"], row["w2_fm_ode"]) < 0.75 * base, row
    for k in ("dsm_ode", "fm_ode"):
        w = np.array([r[f"w2_{k}"] for r in pt])
        excess = np.mean(w - np.array([r["w2_floor"] for r in pt]))
        se = np.sqrt(sum(r[f"w2_{k}_se"] ** 2 + r["w2_floor_se"] ** 2 for r in pt)) / len(pt)
        print(f"FP CI size, {k}: mean W2 over {len(pt)} times {w.mean():.4f}, mean excess over the floor {excess:.4f} ± {se:.4f}")
        assert w.mean() < 0.5 * base
        assert excess < 4 * se, (k, excess, se)


def test_boltzmann_generated_m4_follows_time(runs):
    _, s, _ = runs("boltzmann")
    m, b = s["metrics"], s["baselines"]
    # below the time-blind model by more than 3 standard errors; the floor (DSMC's own error) and
    # the standard errors are reported
    gap = b["m4_mean_abs_error_time_blind"] - m["m4_mean_abs_error_generated"]
    assert gap > 3 * m["m4_mean_abs_error_generated_se"], (m, b)
    assert m["m4_mean_abs_error_dsmc"] > 0 and m["m4_mean_abs_error_dsmc_se"] > 0
    assert b["floor"]["w2"] > 0 and m["w2_end_se"] > 0 and m["speed_chi2_dsmc"] > 0
    assert all("m6_generated" in c and "m6_exact" in c for c in s["m4_curve"])
    curve = s["m4_curve"]
    # the exact curve rises from 12.6 to ~15: the generated one must rise too (by more than 4 SE)
    rise = curve[-1]["m4_generated"] - curve[0]["m4_generated"]
    se = np.hypot(curve[-1]["m4_generated_se"], curve[0]["m4_generated_se"])
    assert rise > 4 * se, curve
    # train.time_gate (the deck's): at t = 0 the generated set is the source itself, the reference
    # run's initial velocities, so its m4 is that run's at t = 0 (summary figures: 6 digits)
    assert curve[0]["t"] == 0 and s["m4_dsmc"][0]["t"] == 0
    assert curve[0]["m4_generated"] == pytest.approx(s["m4_dsmc"][0]["m4_dsmc"], rel=1e-5), (curve[0], s["m4_dsmc"][0])
    # generate.t_max (the deck's 12 of a run to t = 15): the model trains on every snapshot, every
    # reported figure stops at t_max
    times = s["problem"]["times"]
    assert times[-1] == pytest.approx(15) and s["problem"]["t_max"] == pytest.approx(12)
    assert curve[-1]["t"] == pytest.approx(12) and s["m4_dsmc"][-1]["t"] == pytest.approx(12)
    assert len(s["m4_dsmc"]) == sum(t <= 12 + 1e-9 for t in times) < len(times)


def check_ensemble_and_floor(s, members, floor_runs):
    """generate.ensemble = K: the pooled set maps every source particle exactly once, each by one
    member (its rows are the members' rows, N/K from each); the members' errors and the training SE
    are reported. compare.floor_runs = R: the floor is the mean of R independent DSMC runs' errors,
    its SE their spread / sqrt(R)."""
    import h5py
    sys.path.insert(0, str(SRC / "postprocess"))
    import kinflow_h5 as kh
    m = s["metrics"]
    assert m["ensemble"] == members and len(m["m4_mean_abs_error_members"]) == members
    assert m["m4_mean_abs_error_single_model"] == pytest.approx(np.mean(m["m4_mean_abs_error_members"]), rel=1e-4)
    assert m["m4_mean_abs_error_generated_training_se"] >= 0
    assert m["m4_mean_abs_error_generated_total_se"] >= m["m4_mean_abs_error_generated_se"]
    runs_ = np.array(m["m4_mean_abs_error_dsmc_runs"])
    assert m["floor_runs"] == floor_runs and len(runs_) == floor_runs and len(s["files"]["floor_runs"]) == floor_runs
    assert m["m4_mean_abs_error_dsmc"] == pytest.approx(runs_.mean(), rel=1e-4)
    assert m["m4_mean_abs_error_dsmc_se"] == pytest.approx(runs_.std(ddof=1) / np.sqrt(floor_runs), rel=1e-3)
    assert s["baselines"]["floor"]["m4_mean_abs_error"] == m["m4_mean_abs_error_dsmc"]
    assert all(Path(f).is_file() for f in s["files"]["ensemble_models"])

    def last_positions(path):
        with h5py.File(path, "r") as f:
            return kh.read_positions(f, kh.list_snapshots(f)[-1])
    last = s["m4_curve"][-1]
    pooled = last_positions(last["file"])
    gen, i = Path(last["file"]).parent, len(s["m4_curve"]) - 1
    sets = [last_positions(gen / (f"fm_t{i:03d}" + (f"_m{k}" if k else "") + ".h5")) for k in range(members)]
    origin = np.array([np.all(pooled == x, axis=1) for x in sets])  # [members, rows]
    assert np.all(origin.any(axis=0))  # every row is its source particle's image under one member
    share = origin.mean(axis=1)
    assert np.all(np.abs(share - 1 / members) < 0.02), share
    assert np.mean(np.sum(pooled ** 2, axis=1) ** 2) == pytest.approx(last["m4_generated"], rel=1e-5)
    assert last["m4_members"] == pytest.approx([np.mean(np.sum(x ** 2, axis=1) ** 2) for x in sets], rel=1e-5)
    # sample.fm.conserve = momentum_energy (the deck's): every member's set has the momentum and
    # energy of the source, the reference run's initial velocities; the projection factors are reported
    assert s["problem"]["conserve"] == "momentum_energy"
    with h5py.File(s["files"]["reference"], "r") as f:
        v0 = kh.read_positions(f, kh.list_snapshots(f)[0])
    for x in sets:
        assert np.abs(x.mean(axis=0) - v0.mean(axis=0)).max() < 1e-10
        assert np.mean(np.sum(x ** 2, axis=1)) == pytest.approx(np.mean(np.sum(v0 ** 2, axis=1)), rel=1e-10)
    scales = np.array([r["conserve_scale_members"] for r in s["m4_curve"]])
    assert scales.shape == (len(s["m4_curve"]), members) and np.all(np.abs(scales - 1) < 0.05), scales
    assert np.all(np.abs(scales[0] - 1) < 1e-5)  # t = 0: the gated set is the source itself


def test_boltzmann_ensemble_and_floor_runs(runs):
    _, s, _ = runs("boltzmann")
    check_ensemble_and_floor(s, 2, 3)  # the TINY overrides


@pytest.mark.parametrize("kind", ["ks_aggregation", "fokker_planck", "boltzmann"])
def test_report_page_from_the_run_files(runs, kind, tmp_path):
    d, s, stdout = runs(kind)
    for name in ("densities.png", "loss.png", "metrics.png", "report.png", "report.html"):
        p = d / name
        assert p.is_file() and p.stat().st_size > 1000, name
        if name.endswith(".png"):
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (d / "report.html").read_text()
    assert "<table>" in page and "densities.png" in page and "loss.png" in page
    # the page shows the run's own numbers
    if kind == "ks_aggregation":
        assert f"{s['metrics']['fm']['w2']:.4g}" in page
    elif kind == "fokker_planck":
        assert f"{s['ode_sde_gap']['w2']:.4g}" in page
    else:
        assert f"{s['metrics']['m4_mean_abs_error_generated']:.4g}" in page
    # loss histories exist, one row per step
    for info in s["files"]["models"].values():
        if "loss_file" in info:
            rows = Path(info["loss_file"]).read_text().splitlines()
            assert rows[0] == "step,loss,lr" and len(rows) > 100
    # report.py runs again by hand on the same directory
    r = subprocess.run([sys.executable, str(REPORT), str(d), "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_report_on_a_directory_without_summary_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(REPORT), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "summary.json not found" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["unknown_kind", "chi_test_in_training", "one_chi", "bad_number", "bad_set",
                                  "missing_deck", "missing_base_deck", "unknown_key", "wrong_model_section",
                                  "unknown_section", "nfe_reflow", "nfe_counts", "ensemble_in_ks", "t_max_in_ks",
                                  "t_max_not_a_snapshot", "extrapolation_collapses"])
def test_pipeline_bad_input_is_one_line(tmp_path, case):
    deck = SRC / "inputs" / "pipeline_ks_aggregation.ini"
    extra = {"unknown_kind": ["--set", "pipeline.kind=nbody"],
             "chi_test_in_training": ["--set", "simulate.chi_test=1.5"],
             "one_chi": ["--set", "simulate.chi_train=2"],
             "bad_number": ["--set", "compare.max_points=many"],
             "bad_set": ["--set", "max_points=3"],
             "missing_deck": [],
             "unknown_key": ["--set", "compare.max_point=3"],
             "wrong_model_section": ["--set", "train.dsm.steps=3"],
             "unknown_section": ["--set", "simulation.x=3"],
             "missing_base_deck": ["--set", "simulate.deck=inputs/nope.ini"],
             "nfe_reflow": ["--set", "nfe.objectives=fm,reflow"],
             "nfe_counts": ["--set", "nfe.counts=1,2.5"],
             "ensemble_in_ks": ["--set", "generate.ensemble=2"],
             "t_max_in_ks": ["--set", "generate.t_max=0.1"],
             # checked against the training run's snapshot times (1.5 apart), before any training
             "t_max_not_a_snapshot": ["--set", "generate.t_max=11", "--set", "simulate.dsmc.particles=2000"],
             # a low collapse threshold at 256 particles: chi <= 1.5 reach t = 0.2, chi = 3 stops near
             # t = 0.11, before time_extrapolate = 0.15 (checked before any training)
             "extrapolation_collapses": ["--set", "simulate.ks.particles=256", "--set", "simulate.ks.blowup_fraction=0.03",
                                         "--set", "simulate.chi_train=0.5,1,1.5", "--set", "simulate.chi_test=1.25",
                                         "--set", "simulate.chi_extrapolate=3", "--set", "simulate.time_extrapolate=0.15"]}[case]
    if case == "missing_deck":
        deck = tmp_path / "nope.ini"
    if case == "t_max_not_a_snapshot":
        deck = SRC / "inputs" / "pipeline_boltzmann.ini"
    r = pipeline(deck, "--out", tmp_path / "run", "--quiet", *extra)
    assert r.returncode == 1, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kinflow-pipeline: error:"), r.stderr
    expect = {"unknown_kind": "nbody", "chi_test_in_training": "training value", "one_chi": "at least two",
              "bad_number": "max_points", "bad_set": "section.key=value", "missing_deck": "not found",
              "missing_base_deck": "nope.ini", "unknown_key": "max_point",
              "wrong_model_section": "train.dsm", "unknown_section": "[simulation]",
              "nfe_reflow": "nfe.objectives: reflow", "nfe_counts": "nfe.counts",
              "ensemble_in_ks": "generate.ensemble", "t_max_in_ks": "generate.t_max",
              "t_max_not_a_snapshot": "generate.t_max = 11: must be a snapshot time",
              "extrapolation_collapses": "before simulate.time_extrapolate = 0.15 (chi = 3 collapsed)"}[case]
    assert expect in lines[0]
    assert not (tmp_path / "run" / "summary.json").exists()


def test_report_regenerates_the_readme_block(runs, tmp_path):
    d, s, _ = runs("ks_aggregation")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- pipeline:ks_aggregation:begin -->\nold numbers\n<!-- pipeline:ks_aggregation:end -->\nrest\n")
    image = tmp_path / "docs" / "ks.png"
    r = subprocess.run([sys.executable, str(REPORT), str(d), "--quiet", "--readme", str(readme), "--image", str(image)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "![pipeline ks_aggregation report](docs/ks.png)" in text
    assert f"| fm generated | {s['metrics']['fm']['w2']:.4g} ± {s['metrics']['fm']['w2_se']:.4g} |" in text
    assert image.read_bytes() == (d / "report.png").read_bytes()
    # a README without the block is an error, and stays untouched
    other = tmp_path / "OTHER.md"
    other.write_text("no block\n")
    r = subprocess.run([sys.executable, str(REPORT), str(d), "--quiet", "--readme", str(other), "--image", str(image)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "no block" in r.stderr and other.read_text() == "no block\n"


def test_help_documents_every_deck_key():
    r = subprocess.run([sys.executable, str(PIPELINE), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    sys.path.insert(0, str(PIPELINE.parent))
    import kinflow_pipeline as kp
    for section, keys in kp.Deck.KNOWN.items():
        assert f"[{section}]" in r.stdout
        for key in keys:
            assert f"{key} =" in r.stdout, (section, key)
    for kind in kp.KINDS:
        assert kind in r.stdout
    for section in ("[train]", "[train.OBJECTIVE]", "[sample.NAME]", "sample.dsm_ode", "sample.dsm_sde", "sample.fm_ode"):
        assert section in r.stdout
