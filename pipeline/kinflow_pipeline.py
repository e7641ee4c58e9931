#!/usr/bin/env python3
"""kinflow-pipeline: simulate -> learn -> generate -> compare, as one command.

    python3 pipeline/kinflow_pipeline.py PIPELINE.ini [--out DIR] [--ranks N] [--build DIR]
                                         [--set section.key=value ...] [--no-report]

A pipeline deck names its kind and holds the settings of each stage; the runner writes a complete
kinflow deck for every driver call into RUN_DIR/decks/, runs it with mpiexec (the exact command
lines go to RUN_DIR/commands.sh, each call's output to RUN_DIR/logs/), and ends with
RUN_DIR/summary.json (timings, metrics, baselines) and the pictures of postprocess/report.py.

Kinds (see inputs/pipeline_*.ini for every key):

* ``ks_aggregation`` -- 2D Keller-Segel runs for several chi; ``w2map`` and ``fm`` models
  conditioned on chi map the initial particles to the time-T particles; generation at a chi not
  in training, compared with a fresh simulation at that chi (W2, m2, peak density) and timed
  against it (DeepParticle: Wang, Xin & Zhang, arXiv 2209.00109).
* ``fokker_planck`` -- a Langevin run's time-T marginal learned with ``dsm`` and ``fm``; samples
  of the probability-flow ODE and of the reverse SDE (Song et al., ICLR 2021) and their gap.
* ``boltzmann`` -- a DSMC BKW relaxation; an ``fm`` model conditioned on time; generated m4(t)
  against the exact BKW curve (Bobylev 1975; Krook & Wu 1976) and against DSMC.

Every comparison is made with a simulation that used a seed no training run used.
"""

import argparse
import configparser
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent
sys.path.insert(0, str(SRC / "postprocess"))
import kinflow_h5 as kh  # noqa: E402

try:
    import h5py
except ImportError:  # pragma: no cover
    h5py = None

PROG = "kinflow-pipeline"


class PipelineError(Exception):
    """A bad pipeline deck or a failed stage: one clear line for the user."""


# ---- the pipeline deck ---------------------------------------------------------------------------

class Deck:
    """The pipeline deck: INI sections, `--set section.key=value` overrides, typed getters that
    name the key in every error, and a record of what was used."""

    def __init__(self, path, overrides):
        self.path = Path(path)
        if not self.path.is_file():
            raise PipelineError(f"pipeline deck '{path}' not found")
        cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
        cp.optionxform = str
        try:
            cp.read(self.path)
        except configparser.Error as e:
            raise PipelineError(f"{path}: {str(e).splitlines()[0]}") from None
        self.sections = {s: dict(cp[s]) for s in cp.sections()}
        for item in overrides:
            key, sep, value = item.partition("=")
            key = key.strip()
            if key.startswith("simulate."):  # [simulate] keys are themselves `section.key`
                section, dot, name = key.partition(".")
            else:
                section, dot, name = key.rpartition(".")
            if not sep or not dot or not section or not name:
                raise PipelineError(f"--set {item}: expected section.key=value")
            self.sections.setdefault(section, {})[name] = value.strip()

    KNOWN = {"pipeline": {"kind", "out", "ranks", "seed"}, "generate": {"count", "times"},
             "compare": {"max_points", "density_bins"}, "simulate": {"deck", "chi_train", "chi_test"}}

    def check_keys(self, kind):
        """Unknown keys of the runner's own sections are errors (typos must not pass silently);
        [simulate] also takes `section.key` engine overrides, [train*]/[sample.*] go to the drivers,
        which check them."""
        for section in self.sections:
            head, _, tail = section.partition(".")
            if not (section in self.KNOWN or section == "train" or (head in ("train", "sample") and tail)):
                raise PipelineError(f"{self.path}: unknown section [{section}] (known: pipeline, simulate, train, "
                                    "train.OBJECTIVE, sample.NAME, generate, compare)")
        for section, known in self.KNOWN.items():
            for key in self.sections.get(section, {}):
                if key not in known and not (section == "simulate" and "." in key):
                    raise PipelineError(f"{self.path}: unknown key [{section}] {key} (known: {', '.join(sorted(known))})")
        if kind != "ks_aggregation":
            for key in ("chi_train", "chi_test"):
                if key in self.sections.get("simulate", {}):
                    raise PipelineError(f"simulate.{key}: only the ks_aggregation pipeline takes it")
        if kind != "boltzmann" and "objective" in self.sections.get("train", {}):
            raise PipelineError(f"train.objective: the {kind} pipeline trains fixed objectives; "
                                "set per-model keys in [train.OBJECTIVE]")
        allowed = {"ks_aggregation": {"w2map", "fm"}, "fokker_planck": {"dsm", "fm"}, "boltzmann": {"fm", "otfm"}}[kind]
        for section in self.sections:
            if section.startswith("train.") and section[6:] not in allowed:
                raise PipelineError(f"[{section}]: the {kind} pipeline trains {' and '.join(sorted(allowed))}")

    def section(self, name):
        return dict(self.sections.get(name, {}))

    def raw(self, section, key, default=None):
        v = self.sections.get(section, {}).get(key)
        if v is None or v == "":
            if default is None:
                raise PipelineError(f"{self.path}: [{section}] {key} is required")
            return default
        return v

    def number(self, section, key, default=None, kind=float, lo=None, hi=None):
        text = self.raw(section, key, None if default is None else str(default))
        try:
            v = kind(text)
        except ValueError:
            raise PipelineError(f"{section}.{key} = '{text}': expected {'an integer' if kind is int else 'a number'}") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi) or (kind is float and not math.isfinite(v)):
            raise PipelineError(f"{section}.{key} = {text}: must be in [{lo}, {hi}]")
        return v

    def numbers(self, section, key, default=None, lo=None):
        text = self.raw(section, key, default)
        try:
            vals = [float(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise PipelineError(f"{section}.{key} = '{text}': expected a comma list of numbers") from None
        if not vals or any(not math.isfinite(v) or (lo is not None and v < lo) for v in vals):
            raise PipelineError(f"{section}.{key} = '{text}': expected finite numbers >= {lo}")
        return vals


# ---- running the drivers -------------------------------------------------------------------------

def mpi_env():
    env = dict(os.environ, OMPI_MCA_rmaps_base_oversubscribe="1", KOKKOS_DISABLE_WARNINGS="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # Open MPI refuses root without these
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


class Runner:
    """Runs kinflow drivers under mpiexec, logging commands and output, timing each call."""

    def __init__(self, build, run_dir, ranks, verbose=True):
        self.build, self.dir, self.ranks, self.verbose = Path(build), Path(run_dir), ranks, verbose
        self.mpiexec = os.environ.get("KINFLOW_MPIEXEC", "mpiexec")
        self.timings = {}
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.dir / "decks").mkdir(exist_ok=True)
        self.commands = self.dir / "commands.sh"
        self.commands.write_text("#!/bin/sh\n# The driver calls of this pipeline run, in order "
                                 "(re-runnable from the repository root).\nset -e\n")
        for exe in ("kinflow-simulate", "kinflow-train", "kinflow-sample", "kinflow-compare"):
            if not (self.build / "drivers" / exe).exists():
                raise PipelineError(f"{self.build / 'drivers' / exe} not found: build kinflow first "
                                    "(bash ci/build.sh) or pass --build DIR")

    def deck(self, name, sections):
        path = self.dir / "decks" / f"{name}.ini"
        path.write_text(ini_text(sections))
        return path

    def __call__(self, name, exe, args, ranks=None):
        ranks = ranks or self.ranks
        cmd = [self.mpiexec, "-q", "-n", str(ranks), "--oversubscribe", str(self.build / "drivers" / exe),
               *map(str, args)]
        with open(self.commands, "a") as f:
            f.write(shlex.join(cmd) + "\n")
        if self.verbose:
            print(f"{PROG}: [{name}] {exe} {' '.join(map(str, args))}", flush=True)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=mpi_env())
        seconds = time.perf_counter() - t0
        (self.dir / "logs" / f"{name}.log").write_text(f"$ {shlex.join(cmd)}\n{r.stdout}{r.stderr}")
        if r.returncode != 0:
            tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-3:]
            raise PipelineError(f"stage '{name}' failed (exit {r.returncode}): {' | '.join(tail)} "
                                f"(log: {self.dir / 'logs' / (name + '.log')})")
        self.timings[name] = seconds
        return seconds, r.stdout + r.stderr  # summaries on stdout, the progress/done lines on stderr

    def compare(self, name, a, b, snapshot_a=-1, snapshot_b=-1, max_points=2000, seed=0):
        js = self.dir / "logs" / f"{name}.json"
        self(name, "kinflow-compare", [a, b, f"--snapshot-a={snapshot_a}", f"--snapshot-b={snapshot_b}",
                                       f"--max-points={max_points}", f"--seed={seed}", f"--json={js}"], ranks=1)
        self.timings.pop(name, None)
        out = json.loads(js.read_text())
        return {k: v for k, v in out.items() if isinstance(v, (int, float))}


def ini_text(sections):
    out = []
    for name, keys in sections.items():
        out.append(f"[{name}]")
        out += [f"{k} = {v}" for k, v in keys.items()]
        out.append("")
    return "\n".join(out)


def simulate_seconds(stdout):
    """kinflow-simulate's own timer of the time loop ("done N steps, t = T, S s wall")."""
    for line in stdout.splitlines():
        if line.startswith("kinflow: done") and " s wall" in line:
            try:
                return float(line.split(" s wall")[0].rsplit(" ", 1)[-1])
            except ValueError:
                pass
    return None


def sample_seconds(stdout):
    """kinflow-sample's own timer (network work only, no process start-up)."""
    for line in stdout.splitlines():
        if " samples/s)" in line and " s (" in line:
            try:
                return float(line.split(" s (")[0].rsplit(" ", 1)[-1])
            except ValueError:
                pass
    return None


# ---- particle data --------------------------------------------------------------------------------

def read_snapshot(path, index=-1):
    with h5py.File(path, "r") as f:
        snaps = kh.list_snapshots(f)
        if not snaps:
            raise PipelineError(f"{path} has no snapshots")
        s = snaps[index]
        return kh.read_positions(f, s), s["time"]


def snapshot_times(path):
    with h5py.File(path, "r") as f:
        return [s["time"] for s in kh.list_snapshots(f)]


def peak_density(x, mass, box, bins):
    """Largest cell mass / cell area of a 2D histogram on `box` = (lo, hi) per axis."""
    (x0, x1), (y0, y1) = box
    h, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=bins, range=[[x0, x1], [y0, y1]])
    area = (x1 - x0) * (y1 - y0) / bins ** 2
    return float(h.max() * mass / len(x) / area)


def second_moment(x, mass):
    return float(mass * np.mean(np.sum(x * x, axis=1)))


def fmt(v):
    return float(f"{v:.6g}")


def simulation_setup(deck, out):
    """The [simulate] deck (checked), its engine overrides (`section.key` entries), the base seed,
    and the run directory's sim/, gen/, models/ folders."""
    base = SRC / deck.raw("simulate", "deck")
    if not base.is_file():
        raise PipelineError(f"simulate.deck = {base}: not found")
    extra = {k: v for k, v in deck.section("simulate").items() if "." in k}
    for d in ("sim", "gen", "models"):
        (out / d).mkdir(exist_ok=True)
    return base, extra, deck.number("pipeline", "seed", 1, int, 0)


def simulate_run(run, base, extra, out, seed, name, *args):
    """kinflow-simulate on deck `base` with the [simulate] engine overrides `extra`, seed and output
    RUN_DIR/sim/NAME.h5; returns the path and the driver's output."""
    path = out / "sim" / f"{name}.h5"
    _, log = run(f"simulate_{name}", "kinflow-simulate",
                 [base, *args, f"--run.seed={seed}", f"--output.file={path}", *[f"--{k}={v}" for k, v in extra.items()]])
    return path, log


# ---- pipeline 1: Keller-Segel aggregation ---------------------------------------------------------

def tag(v):
    return f"{v:g}".replace(".", "p").replace("-", "m")


def train_sections(deck, objective, data, model, extra):
    keys = {"objective": objective, "data": data, "model_file": model}
    keys.update(deck.section("train"))
    keys.update(deck.section(f"train.{objective}"))
    keys.update(extra)
    keys["objective"] = objective
    return {"run": {"seed": deck.number("pipeline", "seed", 1, int, 0)}, "train": keys}


def sample_sections(deck, objective, model, out, extra, seed):
    keys = {"model_file": model}
    keys.update(deck.section(f"sample.{objective}"))
    keys.update(extra)
    return {"run": {"seed": seed}, "sample": keys, "output": {"file": out}}


def run_ks_aggregation(deck, run, out):
    chis = deck.numbers("simulate", "chi_train", lo=0.0)
    chi_test = deck.numbers("simulate", "chi_test", lo=0.0)[0]
    if len(chis) < 2:
        raise PipelineError("simulate.chi_train: at least two values are needed to learn a chi dependence")
    if chi_test in chis:
        raise PipelineError(f"simulate.chi_test = {chi_test:g} is a training value: generation must be at a new chi")
    points = deck.number("compare", "max_points", 2000, int, 2, 20000)
    bins = deck.number("compare", "density_bins", 40, int, 4, 1000)
    base, extra, seed = simulation_setup(deck, out)

    loop_seconds = {}

    def simulate(chi, s, name):
        path, log = simulate_run(run, base, extra, out, s, name, f"--ks.chi={chi:.17g}")
        loop_seconds[name] = simulate_seconds(log)
        return path

    train_files = [simulate(c, seed + 1 + i, f"train_chi{tag(c)}") for i, c in enumerate(chis)]
    test_file = simulate(chi_test, seed + 1000, f"test_chi{tag(chi_test)}")
    with h5py.File(test_file, "r") as f:
        parsed = kh.load_deck(f)
    mass = float(kh.deck_get(parsed, "ks", "mass", 1.0))
    x_test, t_end = read_snapshot(test_file, -1)
    x_init, _ = read_snapshot(test_file, 0)

    models, gens = {}, {}
    data = ",".join(str(p) for p in train_files)
    for objective in ("w2map", "fm"):
        model = out / "models" / f"{objective}.pt"
        tdeck = run.deck(f"train_{objective}", train_sections(deck, objective, data, model, {
            "snapshot": -1, "source": "snapshot:0", "condition": "ks.chi"}))
        run(f"train_{objective}", "kinflow-train", [tdeck])
        gen = out / "gen" / f"{objective}_chi{tag(chi_test)}.h5"
        sdeck = run.deck(f"sample_{objective}", sample_sections(deck, objective, model, gen, {
            "count": 0, "condition": f"{chi_test:.17g}", "source_file": test_file}, seed + 2000))
        _, stdout = run(f"sample_{objective}", "kinflow-sample", [sdeck])
        models[objective] = {"model": str(model), "loss_file": str(model) + ".loss.csv",
                             "sample_seconds_internal": sample_seconds(stdout)}
        gens[objective] = gen

    # Compare: every set against the fresh simulation's time-T particles.
    lo = np.quantile(x_test, 0.005, axis=0)
    hi = np.quantile(x_test, 0.995, axis=0)
    pad = 0.1 * (hi - lo)
    box = [(lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])]
    nearest = int(np.argmin([abs(c - chi_test) for c in chis]))

    def describe(x):
        return {"m2": fmt(second_moment(x, mass)), "peak_density": fmt(peak_density(x, mass, box, bins))}

    results = {"simulated": describe(x_test)}
    for objective, gen in gens.items():
        x_gen, _ = read_snapshot(gen, -1)
        m = run.compare(f"compare_{objective}", test_file, gen, max_points=points)
        results[objective] = {**describe(x_gen), "w2": fmt(m["w2_exact"]), "sliced_w2": fmt(m["sliced_w2"]),
                              "energy_distance": fmt(m["energy_distance"])}
    m = run.compare("compare_initial", test_file, test_file, snapshot_b=0, max_points=points)
    baselines = {"initial": {**describe(x_init), "w2": fmt(m["w2_exact"]), "sliced_w2": fmt(m["sliced_w2"])}}
    m = run.compare("compare_nearest", test_file, train_files[nearest], max_points=points)
    x_near, _ = read_snapshot(train_files[nearest], -1)
    baselines["nearest_training_chi"] = {"chi": chis[nearest], **describe(x_near), "w2": fmt(m["w2_exact"]),
                                         "sliced_w2": fmt(m["sliced_w2"])}

    t = run.timings
    sim_s = t[f"simulate_test_chi{tag(chi_test)}"]
    timing = {"simulate_test_s": fmt(sim_s),
              "simulate_all_s": fmt(sum(v for k, v in t.items() if k.startswith("simulate_"))),
              "train_w2map_s": fmt(t["train_w2map"]), "train_fm_s": fmt(t["train_fm"]),
              "sample_w2map_s": fmt(t["sample_w2map"]), "sample_fm_s": fmt(t["sample_fm"]),
              "speedup_w2map": fmt(sim_s / t["sample_w2map"]), "speedup_fm": fmt(sim_s / t["sample_fm"])}
    # The same ratio without process start-up (MPI, LibTorch loading): the simulation's time loop
    # against kinflow-sample's network time.
    loop = loop_seconds.get(f"test_chi{tag(chi_test)}")
    if loop and all(models[k]["sample_seconds_internal"] for k in models):
        timing["simulate_test_loop_s"] = fmt(loop)
        for k in models:
            timing[f"sample_{k}_compute_s"] = fmt(models[k]["sample_seconds_internal"])
            timing[f"speedup_{k}_compute"] = fmt(loop / models[k]["sample_seconds_internal"])
    return {
        "problem": {"chi_train": chis, "chi_test": chi_test, "time": fmt(t_end), "particles": int(len(x_test)),
                    "mass": mass, "density_box": [list(map(fmt, b)) for b in box], "density_bins": bins,
                    "compare_points": min(points, len(x_test))},
        "files": {"train": [str(p) for p in train_files], "test": str(test_file),
                  "generated": {k: str(v) for k, v in gens.items()}, "models": models},
        "timings": timing, "metrics": results, "baselines": baselines,
    }


# ---- pipeline 2: Fokker-Planck --------------------------------------------------------------------

def run_fokker_planck(deck, run, out):
    points = deck.number("compare", "max_points", 2000, int, 2, 20000)
    count = deck.number("generate", "count", 10000, int, 2)
    base, extra, seed = simulation_setup(deck, out)

    def simulate(s, name):
        return simulate_run(run, base, extra, out, s, name)[0]

    train_file = simulate(seed + 1, "train")
    ref_file = simulate(seed + 1000, "reference")
    models, gens = {}, {}
    for objective in ("dsm", "fm"):
        model = out / "models" / f"{objective}.pt"
        tdeck = run.deck(f"train_{objective}", train_sections(deck, objective, train_file, model, {
            "snapshot": -1, "source": "gaussian"}))
        run(f"train_{objective}", "kinflow-train", [tdeck])
        models[objective] = {"model": str(model), "loss_file": str(model) + ".loss.csv"}
    samplers = {"dsm_ode": ("dsm", deck.section("sample.dsm_ode") or {"method": "rk4", "nfe": 100}),
                "dsm_sde": ("dsm", deck.section("sample.dsm_sde") or {"method": "euler-maruyama", "nfe": 500}),
                "fm_ode": ("fm", deck.section("sample.fm_ode") or {"method": "rk4", "nfe": 40})}
    for i, (name, (objective, keys)) in enumerate(samplers.items()):
        gen = out / "gen" / f"{name}.h5"
        sdeck = run.deck(f"sample_{name}", {"run": {"seed": seed + 2000 + i},
                                            "sample": {"model_file": models[objective]["model"], "count": count, **keys},
                                            "output": {"file": gen}})
        _, stdout = run(f"sample_{name}", "kinflow-sample", [sdeck])
        gens[name] = gen
        models.setdefault(name, {})["sample_seconds_internal"] = sample_seconds(stdout)

    results = {}
    for name, gen in gens.items():
        m = run.compare(f"compare_{name}", ref_file, gen, max_points=points)
        results[name] = {"w2": fmt(m["w2_exact"]), "sliced_w2": fmt(m["sliced_w2"]), "mean_error": fmt(m["mean_error"]),
                         "cov_error_fro": fmt(m["cov_error_fro"])}
    gap = run.compare("compare_ode_sde", gens["dsm_ode"], gens["dsm_sde"], max_points=points)
    m0 = run.compare("compare_initial", ref_file, ref_file, snapshot_b=0, max_points=points)
    mf = run.compare("compare_independent_run", ref_file, train_file, max_points=points)
    x_ref, t_end = read_snapshot(ref_file, -1)
    t = run.timings
    return {
        "problem": {"time": fmt(t_end), "particles": int(len(x_ref)), "dim": int(x_ref.shape[1]), "generated": count,
                    "compare_points": points},
        "files": {"train": str(train_file), "reference": str(ref_file), "generated": {k: str(v) for k, v in gens.items()},
                  "models": models},
        "timings": {k + "_s": fmt(v) for k, v in t.items()},
        "metrics": results,
        "ode_sde_gap": {"w2": fmt(gap["w2_exact"]), "sliced_w2": fmt(gap["sliced_w2"])},
        "baselines": {"initial": {"w2": fmt(m0["w2_exact"]), "sliced_w2": fmt(m0["sliced_w2"])},
                      "independent_simulation": {"w2": fmt(mf["w2_exact"]), "sliced_w2": fmt(mf["sliced_w2"])}},
    }


# ---- pipeline 3: Boltzmann (BKW) ------------------------------------------------------------------

def bkw_m4_exact(tau):
    K = -np.expm1(-np.asarray(tau, dtype=float) / 6.0)
    return 30.0 * K - 15.0 * K * K


def fourth_moment(v):
    s = np.sum(v * v, axis=1)
    return float(np.mean(s * s)), float(np.std(s * s) / math.sqrt(len(s)))


def run_boltzmann(deck, run, out):
    count = deck.number("generate", "count", 50000, int, 2)
    n_times = deck.number("generate", "times", 13, int, 2, 1000)
    points = deck.number("compare", "max_points", 2000, int, 2, 20000)
    base, extra, seed = simulation_setup(deck, out)

    def simulate(s, name):
        return simulate_run(run, base, extra, out, s, name)[0]

    train_file = simulate(seed + 1, "train")
    ref_file = simulate(seed + 1000, "reference")
    with h5py.File(ref_file, "r") as f:
        parsed = kh.load_deck(f)
    if (kh.deck_get(parsed, "dsmc", "init", "") or "").strip() != "bkw" or \
            (kh.deck_get(parsed, "dsmc", "kernel", "") or "").strip() != "maxwell":
        raise PipelineError("boltzmann pipeline: simulate.deck must be a BKW problem (dsmc.init = bkw, kernel = maxwell)")
    t0 = float(kh.deck_get(parsed, "dsmc", "bkw_t0", 6 * math.log(2.5)))
    nu = float(kh.deck_get(parsed, "dsmc", "collision_rate", 1.0))
    times = snapshot_times(train_file)
    objective = deck.section("train").get("objective", "fm")
    if objective not in ("fm", "otfm"):
        raise PipelineError(f"train.objective = {objective}: the boltzmann pipeline takes fm or otfm")
    model = out / "models" / f"{objective}.pt"
    # source = gaussian: the model transports N(0, I) to the velocity distribution at time t;
    # source = snapshot:0: it transports the initial velocities along the coupling the DSMC run
    # produced (each particle's velocity at 0 and at t), and generation starts from the initial
    # velocities of the reference run (its own exact BKW sample).
    source = deck.section("train").get("source", "gaussian")
    if source not in ("gaussian", "snapshot:0"):
        raise PipelineError(f"train.source = {source}: the boltzmann pipeline takes gaussian or snapshot:0")
    tdeck = run.deck(f"train_{objective}", train_sections(deck, objective, train_file, model, {
        "snapshot": ",".join(str(i) for i in range(len(times))), "source": source, "condition": "time"}))
    run(f"train_{objective}", "kinflow-train", [tdeck])
    gen_keys = {"count": count} if source == "gaussian" else {"count": 0, "source_file": ref_file}

    grid = np.linspace(times[0], times[-1], n_times)
    curve = []
    for i, tg in enumerate(grid):
        gen = out / "gen" / f"{objective}_t{i:03d}.h5"
        sdeck = run.deck(f"sample_t{i:03d}", sample_sections(deck, "fm", model, gen, {
            **gen_keys, "condition": f"{tg:.17g}"}, seed + 2000 + i))
        run(f"sample_t{i:03d}", "kinflow-sample", [sdeck])
        v, _ = read_snapshot(gen, -1)
        m4, se = fourth_moment(v)
        curve.append({"t": fmt(tg), "m4_generated": fmt(m4), "m4_generated_se": fmt(se),
                      "m4_exact": fmt(float(bkw_m4_exact(t0 + nu * tg))), "file": str(gen)})
    dsmc = []
    pooled = []
    with h5py.File(ref_file, "r") as f:
        for s in kh.list_snapshots(f):
            v = kh.read_positions(f, s)
            m4, se = fourth_moment(v)
            dsmc.append({"t": fmt(s["time"]), "m4_dsmc": fmt(m4), "m4_dsmc_se": fmt(se),
                         "m4_exact": fmt(float(bkw_m4_exact(t0 + nu * s["time"])))})
    with h5py.File(train_file, "r") as f:
        pooled = np.concatenate([kh.read_positions(f, s) for s in kh.list_snapshots(f)])
    m4_pool, _ = fourth_moment(pooled)
    err_gen = float(np.mean([abs(c["m4_generated"] - c["m4_exact"]) for c in curve]))
    err_pool = float(np.mean([abs(m4_pool - c["m4_exact"]) for c in curve]))
    err_dsmc = float(np.mean([abs(c["m4_dsmc"] - c["m4_exact"]) for c in dsmc]))
    # W2 at the last time: generated at t_end (the last grid point) vs the reference run's last snapshot.
    w2_end = run.compare("compare_end", ref_file, Path(curve[-1]["file"]), max_points=points)
    w2_init = run.compare("compare_initial", ref_file, ref_file, snapshot_b=0, max_points=points)
    w2_floor = run.compare("compare_independent_run", ref_file, train_file, max_points=points)
    t = run.timings
    return {
        "problem": {"times": [fmt(x) for x in times], "bkw_t0": t0, "collision_rate": nu, "source": source,
                    "objective": objective,
                    "generated": count if source == "gaussian" else int(len(pooled) // len(times)),
                    "particles": int(len(pooled) // len(times)), "compare_points": points},
        "files": {"train": str(train_file), "reference": str(ref_file),
                  "models": {objective: {"model": str(model), "loss_file": str(model) + ".loss.csv"}}},
        "timings": {"simulate_s": fmt(t["simulate_reference"]), "train_s": fmt(t[f"train_{objective}"]),
                    "sample_per_time_s": fmt(float(np.mean([v for k, v in t.items() if k.startswith("sample_t")])))},
        "m4_curve": curve, "m4_dsmc": dsmc,
        "metrics": {"m4_mean_abs_error_generated": fmt(err_gen), "m4_mean_abs_error_dsmc": fmt(err_dsmc),
                    "w2_end": fmt(w2_end["w2_exact"])},
        "baselines": {"m4_mean_abs_error_time_blind": fmt(err_pool), "m4_time_blind": fmt(m4_pool),
                      "w2_initial_vs_end": fmt(w2_init["w2_exact"]),
                      "w2_independent_runs_end": fmt(w2_floor["w2_exact"])},
    }


KINDS = {"ks_aggregation": run_ks_aggregation, "fokker_planck": run_fokker_planck, "boltzmann": run_boltzmann}

DECK_KEYS = """pipeline deck keys (INI; every key can be overridden with --set section.key=value):
  [pipeline]  kind = ks_aggregation | fokker_planck | boltzmann (required)
              out = run directory (required unless --out); ranks = MPI ranks per driver call (2);
              seed = base seed (1): training runs seed+1.., the reference/test run seed+1000,
              samplers seed+2000..; model initialisation and minibatches use seed
  [simulate]  deck = the kinflow-simulate deck, relative to the repository (required);
              section.key = value: any key of that deck, passed as --section.key=value
              (e.g. ks.particles = 4096; --set simulate.ks.particles=1024);
              ks_aggregation only: chi_train = comma list (>= 2 values), chi_test = one value
              not among them
  [train]     keys of kinflow-train's [train] section shared by every model of the pipeline
              (hidden, layers, steps, lr, batch_size, ...; see kinflow-train --help); boltzmann
              also takes objective = fm | otfm and source = gaussian | snapshot:0 here
  [train.OBJECTIVE]  per-model kinflow-train keys: ks_aggregation w2map, fm; fokker_planck
              dsm, fm; boltzmann fm | otfm
  [sample.NAME]  kinflow-sample keys (method, nfe, ...): ks_aggregation sample.w2map,
              sample.fm; fokker_planck sample.dsm_ode (default rk4, nfe 100), sample.dsm_sde
              (euler-maruyama, nfe 500), sample.fm_ode (rk4, nfe 40); boltzmann sample.fm
  [generate]  count = samples per generated set (fokker_planck 10000; boltzmann 50000 with a
              gaussian source, else one per reference particle); times = generation times of
              boltzmann (13), equally spaced over the snapshot times
  [compare]   max_points = subsample for exact W2 (2000, 2..20000); density_bins = histogram
              cells per axis for the ks_aggregation peak density (40)
Unknown sections and keys of [pipeline], [simulate], [generate], [compare] are errors; keys of
[train*] and [sample.*] are checked by the drivers (a bad one fails its stage with the driver's
message and the log's path).
outputs: RUN_DIR/summary.json, decks/, logs/, commands.sh, sim/, models/ (MODEL.pt,
MODEL.pt.loss.csv), gen/, and report.png/html, densities.png, loss.png, metrics.png."""


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("Every comparison")[0].strip(),
                                epilog=DECK_KEYS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("deck", help="pipeline deck (inputs/pipeline_*.ini)")
    p.add_argument("--out", help="run directory (default: [pipeline] out)")
    p.add_argument("--ranks", type=int, help="MPI ranks per driver call (default: [pipeline] ranks)")
    p.add_argument("--build", default=os.environ.get("KINFLOW_BUILD_DIR", str(SRC / "build")),
                   help="kinflow build directory (default: build/)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a pipeline deck key (repeatable)")
    p.add_argument("--no-report", action="store_true", help="skip postprocess/report.py")
    p.add_argument("--quiet", action="store_true", help="no per-stage lines")
    a = p.parse_args(argv)
    try:
        if h5py is None:
            raise PipelineError("h5py is missing: run with Debian's /usr/bin/python3 (python3-h5py)")
        deck = Deck(a.deck, a.set)
        kind = deck.raw("pipeline", "kind")
        if kind not in KINDS:
            raise PipelineError(f"pipeline.kind = {kind}: expected one of {' | '.join(KINDS)}")
        deck.check_keys(kind)
        out = Path(a.out or deck.raw("pipeline", "out"))
        ranks = a.ranks if a.ranks is not None else deck.number("pipeline", "ranks", 2, int, 1, 4096)
        if ranks < 1:
            raise PipelineError("--ranks must be >= 1")
        out.mkdir(parents=True, exist_ok=True)
        summary_path = out / "summary.json"
        partial = out / "summary.json.incomplete"
        if summary_path.exists():
            summary_path.unlink()  # a stale summary must not outlive a failed rerun
        run = Runner(a.build, out, ranks, verbose=not a.quiet)
        shutil.copyfile(a.deck, out / "pipeline.ini")
        t0 = time.perf_counter()
        summary = KINDS[kind](deck, run, out)
        summary = {"kind": kind, "deck": str(a.deck), "overrides": a.set, "ranks": ranks,
                   "wall_s": fmt(time.perf_counter() - t0), **summary}
        partial.write_text(json.dumps(summary, indent=2) + "\n")
        partial.replace(summary_path)
        if not a.no_report:
            r = subprocess.run([sys.executable, str(SRC / "postprocess" / "report.py"), str(out)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise PipelineError(f"report.py failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
            sys.stdout.write(r.stdout)
        print(f"{PROG}: {kind} done in {summary['wall_s']:.1f} s; summary {summary_path}")
        return 0
    except PipelineError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
