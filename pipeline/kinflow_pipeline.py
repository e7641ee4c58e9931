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
  conditioned on (chi, time) map each run's initial particles to its particles at every later
  snapshot, and ``tfm`` (conditioned on chi) learns the velocity field that carries them through
  the snapshots in physical time; generation at an unseen chi (and optionally an extrapolated
  one, and leave-one-out), compared with a fresh simulation there (W2, m2, peak density, each
  with a standard error) beside the sampling floor (independent fresh simulations), the nearest
  training run and the displacement interpolation of the neighbouring runs, and timed against
  it (DeepParticle: Wang, Xin & Zhang, arXiv 2209.00109).
* ``fokker_planck`` -- a Langevin run's marginals at every snapshot time learned with ``dsm`` and
  ``fm`` conditioned on time; samples of the probability-flow ODE and of the reverse SDE (Song et
  al., ICLR 2021) and their gap, with the floor of two independent runs.
* ``boltzmann`` -- a DSMC BKW relaxation; a model (fm, otfm or the physical-time flow tfm) for all
  times; generated m4(t), m6(t) against the exact BKW curves (Bobylev 1975; Krook & Wu 1976) and
  against DSMC's own error, the speed law at the last time against the exact density.
* ``shock`` -- spatial DSMC normal shocks at several Mach numbers (Rankine-Hugoniot states); one
  fm model of the aligned rows (x / lambda_1 from the density midpoint, v_x, v_perp) conditioned on
  the Mach number, so that its conditional at x is f(v | x); generated at an unseen Mach and
  compared with a fresh DSMC run there: density (from the constant mass flux) and temperature
  profiles and the bimodal v_x distribution mid-shock, beside the floor, the nearest training
  Mach and the interpolation in M.

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
import threading
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
        except UnicodeDecodeError as e:
            raise PipelineError(f"{path}: not UTF-8 text (byte {e.start})") from None
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

    KNOWN = {"pipeline": {"kind", "out", "ranks", "seed"}, "generate": {"count", "times", "ranks", "ensemble", "t_max"},
             "compare": {"max_points", "density_bins", "bootstrap", "floor_runs", "window", "profile_bins", "mid_width",
                         "replicates"},
             "nfe": {"objectives", "counts", "times"},
             "simulate": {"deck", "chi_train", "chi_test", "chi_extrapolate", "time_extrapolate", "leave_one_out",
                          "mach_train", "mach_test"}}

    def check_keys(self, kind):
        """Unknown keys of the runner's own sections are errors (typos must not pass silently);
        [simulate] also takes `section.key` engine overrides, [train*]/[sample.*] go to the drivers,
        which check them."""
        for section in self.sections:
            head, _, tail = section.partition(".")
            if not (section in self.KNOWN or section == "train" or (head in ("train", "sample") and tail)):
                raise PipelineError(f"{self.path}: unknown section [{section}] (known: pipeline, simulate, train, "
                                    "train.OBJECTIVE, sample.NAME, generate, compare, nfe)")
        for section, known in self.KNOWN.items():
            for key in self.sections.get(section, {}):
                if key not in known and not (section == "simulate" and "." in key):
                    raise PipelineError(f"{self.path}: unknown key [{section}] {key} (known: {', '.join(sorted(known))})")
        if kind != "ks_aggregation":
            for key in ("chi_train", "chi_test", "chi_extrapolate", "time_extrapolate", "leave_one_out"):
                if key in self.sections.get("simulate", {}):
                    raise PipelineError(f"simulate.{key}: only the ks_aggregation pipeline takes it")
        for section, keys in (("simulate", ("mach_train", "mach_test")),
                              ("compare", ("window", "profile_bins", "mid_width", "replicates"))):
            for key in keys:
                if kind != "shock" and key in self.sections.get(section, {}):
                    raise PipelineError(f"{section}.{key}: only the shock pipeline takes it")
        for section, key in (("generate", "ensemble"), ("generate", "t_max")):
            if kind != "boltzmann" and key in self.sections.get(section, {}):
                raise PipelineError(f"{section}.{key}: only the boltzmann pipeline takes it")
        if kind not in ("boltzmann", "ks_aggregation") and "floor_runs" in self.sections.get("compare", {}):
            raise PipelineError("compare.floor_runs: only the boltzmann and ks_aggregation pipelines take it")
        if kind != "boltzmann" and "objective" in self.sections.get("train", {}):
            raise PipelineError(f"train.objective: the {kind} pipeline trains fixed objectives; "
                                "set per-model keys in [train.OBJECTIVE]")
        allowed = {"ks_aggregation": set(KS_OBJECTIVES), "fokker_planck": {"dsm", "fm"}, "boltzmann": {"fm", "otfm", "tfm"},
                   "shock": {"fm"}}[kind]
        if self.sections.get("nfe") and kind in ("fokker_planck", "shock"):
            raise PipelineError("[nfe]: the NFE table is made by the ks_aggregation and boltzmann pipelines")
        # the one-step family's sections may stay in a deck whose NFE table is off (nfe.objectives = none)
        allowed = allowed | set(nfe_objectives(self, kind)) | (NFE_FAMILY if kind not in ("fokker_planck", "shock") else set())
        if nfe_objectives(self, kind):  # checked before the first simulation
            nfe_counts(self)
            self.number("nfe", "times", 4, int, 1, 1000)
        for section in self.sections:
            if section.startswith("train.") and section[6:] not in allowed:
                raise PipelineError(f"[{section}]: the {kind} pipeline trains {' and '.join(sorted(allowed))} "
                                    "(and the objectives of nfe.objectives)")

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
        self.direct = "KINFLOW_MPIEXEC" not in os.environ  # a custom launcher starts every call
        self.timings = {}
        self.lock = threading.Lock()
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.dir / "decks").mkdir(exist_ok=True)
        self.commands = self.dir / "commands.sh"
        self.commands.write_text("#!/bin/sh\n# The driver calls of this pipeline run, in order "
                                 "(re-runnable from the repository root).\nset -e\n")
        for exe in ("kinflow-simulate", "kinflow-train", "kinflow-sample", "kinflow-compare"):
            if not (self.build / "drivers" / exe).exists():
                raise PipelineError(f"{self.build / 'drivers' / exe} not found: build kinflow first "
                                    "(bash ci/build.sh) or pass --build DIR")
        self.has_generate = (self.build / "drivers" / "kinflow-generate").exists()

    def deck(self, name, sections):
        path = self.dir / "decks" / f"{name}.ini"
        path.write_text(ini_text(sections))
        return path

    def __call__(self, name, exe, args, ranks=None):
        ranks = ranks or self.ranks
        env = mpi_env()
        if ranks == 1 and self.direct:
            # One process: started directly (an MPI singleton), without mpiexec and its daemon;
            # Open MPI's isolated singleton forks no orted either (measured: kinflow-sample at
            # pipeline-1 size 3.3 s wall instead of 7.3 s under `mpiexec -n 2`, README).
            env["OMPI_MCA_ess_singleton_isolated"] = "1"
            cmd = [str(self.build / "drivers" / exe), *map(str, args)]
            line = "OMPI_MCA_ess_singleton_isolated=1 " + shlex.join(cmd)
        else:
            cmd = [self.mpiexec, "-q", "-n", str(ranks), "--oversubscribe", str(self.build / "drivers" / exe),
                   *map(str, args)]
            line = shlex.join(cmd)
        with self.lock, open(self.commands, "a") as f:
            f.write(line + "\n")
        if self.verbose:
            print(f"{PROG}: [{name}] {exe} {' '.join(map(str, args))}", flush=True)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t0
        (self.dir / "logs" / f"{name}.log").write_text(f"$ {shlex.join(cmd)}\n{r.stdout}{r.stderr}")
        if r.returncode != 0:
            tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-3:]
            raise PipelineError(f"stage '{name}' failed (exit {r.returncode}): {' | '.join(tail)} "
                                f"(log: {self.dir / 'logs' / (name + '.log')})")
        self.timings[name] = seconds
        return seconds, r.stdout + r.stderr  # summaries on stdout, the progress/done lines on stderr

    def compare(self, name, a, b, snapshot_a=-1, snapshot_b=-1, max_points=2000, seed=0, bootstrap=0, interpolate=None):
        self(name, "kinflow-compare", self.compare_args(name, a, b, snapshot_a, snapshot_b, max_points, seed, bootstrap,
                                                         interpolate), ranks=1)
        self.timings.pop(name, None)
        return self.compare_result(name)

    def compare_args(self, name, a, b, snapshot_a, snapshot_b, max_points, seed, bootstrap, interpolate=None):
        js = self.dir / "logs" / f"{name}.json"
        args = [a, b, f"--snapshot-a={snapshot_a}", f"--snapshot-b={snapshot_b}", f"--max-points={max_points}",
                f"--seed={seed}", f"--json={js}", "--no-sinkhorn"]
        if bootstrap:
            args.append(f"--bootstrap={bootstrap}")
        if interpolate is not None:
            args += [f"--interpolate={interpolate[0]:.17g}", f"--interpolate-out={interpolate[1]}"]
        return args

    def compare_result(self, name):
        out = json.loads((self.dir / "logs" / f"{name}.json").read_text())
        return {k: v for k, v in out.items() if isinstance(v, (int, float))}

    def compare_many(self, jobs, max_points, bootstrap, seed=0):
        """kinflow-compare for every job name -> (a, b, snapshot_a, snapshot_b), two at a time (the
        exact assignments are serial; two processes fill two cores)."""
        from concurrent.futures import ThreadPoolExecutor
        workers = max(1, min(2, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {name: pool.submit(self, name, "kinflow-compare",
                                         self.compare_args(name, a, b, sa, sb, max_points, seed, bootstrap), 1)
                       for name, (a, b, sa, sb) in jobs.items()}
            for f in futures.values():
                f.result()
        for name in jobs:
            self.timings.pop(name, None)
        return {name: self.compare_result(name) for name in jobs}


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


# Objectives kinflow-generate takes (the deterministic samplers on MODEL.h5, without LibTorch).
GENERATE_OBJECTIVES = {"fm", "otfm", "reflow", "tfm", "meanflow", "flowmap", "w2map"}


def generate_torchfree(run, name, objective, sdeck, gen, ranks):
    """kinflow-sample's deck `sdeck` once more through kinflow-generate (no LibTorch; started alone,
    no MPI): its whole-process wall, its own network timer and the largest difference of its
    positions from kinflow-sample's output `gen`, relative to their scale (float32 round-off).
    None when kinflow-generate is not built or does not take the objective (dsm)."""
    if not run.has_generate or objective not in GENERATE_OBJECTIVES:
        return None
    out = gen.with_name(gen.stem + "_torchfree.h5")
    wall, stdout = run(f"generate_{name}", "kinflow-generate", [sdeck, f"--output.file={out}"], ranks=ranks)
    run.timings.pop(f"generate_{name}", None)
    a, b = read_snapshot(gen, -1)[0], read_snapshot(out, -1)[0]
    return {"wall_s": fmt(wall), "compute_s": sample_seconds(stdout),
            "max_rel_diff": fmt(float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(a))), 1e-300))}


# ---- particle data --------------------------------------------------------------------------------

def read_snapshot(path, index=-1):
    with h5py.File(path, "r") as f:
        snaps = kh.list_snapshots(f)
        if not snaps:
            raise PipelineError(f"{path} has no snapshots")
        s = snaps[index]
        return kh.read_positions(f, s), s["time"]


def conserve_scale(path):
    """The last snapshot's sample.conserve projection factor (kinflow-sample's diagnostic), or None."""
    with h5py.File(path, "r") as f:
        return float(f["diagnostics/conserve_scale"][-1]) if "diagnostics/conserve_scale" in f else None


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


def w2_fields(m):
    """The W2 entries of a kinflow-compare result: w2, its bootstrap SE (NaN without bootstrap),
    sliced W2."""
    return {"w2": fmt(m["w2_exact"]), "w2_se": fmt(m.get("w2_exact_se", float("nan"))), "sliced_w2": fmt(m["sliced_w2"])}


def generate_ranks(deck, default):
    """MPI ranks of the kinflow-sample calls (generate.ranks); 1 starts the driver directly."""
    return deck.number("generate", "ranks", default, int, 1, 4096)


NFE_FAMILY = {"meanflow", "flowmap"}  # [train.NAME] sections every NFE-table pipeline deck may hold
NFE_REFUSED = {"reflow": "reflow trains on (Gaussian noise, sample) pairs of an unconditional teacher, and these "
                          "pipelines' models start from the initial snapshot and are conditioned",
               "dsm": "dsm diffuses to Gaussian noise; these pipelines' models start from the initial snapshot",
               "tfm": "tfm integrates physical time (sample.time), not a path time sampled at a number of evaluations"}


def nfe_objectives(deck, kind):
    """[nfe] objectives: the models of the NFE-accuracy table (none: no table). Any kinflow-train
    objective that samples with sample.nfe evaluations from the pipeline's source is taken by name
    (kinflow-train rejects an unknown one); w2map is its one-evaluation reference."""
    text = deck.raw("nfe", "objectives", "none").strip()
    if text == "none":
        return []
    objs = [x.strip() for x in text.split(",") if x.strip()]
    if not objs or len(set(objs)) != len(objs):
        raise PipelineError(f"nfe.objectives = '{text}': expected none or a comma list of distinct objectives")
    for o in objs:
        if o in NFE_REFUSED:
            raise PipelineError(f"nfe.objectives: {o}: {NFE_REFUSED[o]}")
        if kind == "boltzmann" and o == "w2map":
            raise PipelineError("nfe.objectives: w2map: the boltzmann pipeline generates every time with one model "
                                "conditioned on time; w2map is the ks_aggregation pipeline's map")
    return objs


def nfe_counts(deck):
    counts = deck.numbers("nfe", "counts", "1,2,4,8,100", lo=1)
    if any(c != int(c) for c in counts) or len(set(counts)) != len(counts):
        raise PipelineError(f"nfe.counts = '{deck.raw('nfe', 'counts')}': expected distinct integers >= 1")
    return sorted(int(c) for c in counts)


def nfe_sample_keys(objective, n):
    """kinflow-sample keys of one NFE-table entry: n Euler steps (flow matching), n jumps (meanflow,
    flow maps); w2map is one evaluation whatever n."""
    return {} if objective == "w2map" else {"method": "euler", "nfe": n}


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


def moments_with_se(x, mass, box, bins, rng, resamples=50):
    """m2 and peak density of a 2D particle set with standard errors: m2's from the sample variance
    of |x|^2, the peak density's from bootstrap resamples of the particles."""
    r2 = np.sum(x * x, axis=1)
    peaks = [peak_density(x[rng.integers(0, len(x), len(x))], mass, box, bins) for _ in range(resamples)]
    return {"m2": fmt(mass * float(np.mean(r2))), "m2_se": fmt(mass * float(np.std(r2)) / math.sqrt(len(x))),
            "peak_density": fmt(peak_density(x, mass, box, bins)), "peak_density_se": fmt(float(np.std(peaks, ddof=1)))}


def snapshot_index(path, t, key):
    """Index of the snapshot of `path` at time t (within 1e-6 relative), or a PipelineError naming
    the deck key that asked for t."""
    times = snapshot_times(path)
    for i, ti in enumerate(times):
        if abs(ti - t) <= 1e-6 * max(1.0, abs(t)):
            return i
    raise PipelineError(f"{key} = {t:g}: must be a snapshot time of {path} (its times: {', '.join(f'{x:g}' for x in times)})")


def deck_float(base, extra, section, key):
    """A number of the simulation deck after the [simulate] overrides."""
    if f"{section}.{key}" in extra:
        return float(extra[f"{section}.{key}"])
    cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
    cp.read(base)
    return float(cp[section][key])


# Pipeline 1's generators and what each is conditioned on: w2map and fm map the initial particles
# to (chi, t) in one map / one ODE in a pseudo-time; tfm's velocity field v(x, t; chi) is
# integrated in physical time from t = 0 to t (the time is its integration variable, not an input
# condition).
KS_OBJECTIVES = ("w2map", "fm", "tfm")
KS_CONDITION = {"w2map": "ks.chi,time", "fm": "ks.chi,time", "tfm": "ks.chi"}  # and the NFE table's models: ks.chi,time


def run_ks_aggregation(deck, run, out):
    chis = deck.numbers("simulate", "chi_train", lo=0.0)
    chi_test = deck.numbers("simulate", "chi_test", lo=0.0)[0]
    if len(chis) < 2:
        raise PipelineError("simulate.chi_train: at least two values are needed to learn a chi dependence")
    if chi_test in chis:
        raise PipelineError(f"simulate.chi_test = {chi_test:g} is a training value: generation must be at a new chi")
    chi_x = deck.numbers("simulate", "chi_extrapolate", "none", lo=0.0)[0] \
        if deck.raw("simulate", "chi_extrapolate", "none") != "none" else None
    if chi_x is not None and min(chis) <= chi_x <= max(chis):
        raise PipelineError(f"simulate.chi_extrapolate = {chi_x:g} lies inside the training range "
                            f"[{min(chis):g}, {max(chis):g}]: it must be outside")
    loo = deck.numbers("simulate", "leave_one_out", "none", lo=0.0)[0] \
        if deck.raw("simulate", "leave_one_out", "none") != "none" else None
    if loo is not None and (loo not in chis or loo in (min(chis), max(chis)) or len(chis) < 3):
        raise PipelineError(f"simulate.leave_one_out = {loo:g}: must be an interior value of chi_train "
                            "(with at least three training values)")
    points = deck.number("compare", "max_points", 4096, int, 2, 20000)
    bins = deck.number("compare", "density_bins", 40, int, 4, 1000)
    boot = deck.number("compare", "bootstrap", 5, int, 0, 1000)
    if boot == 1:
        raise PipelineError("compare.bootstrap = 1: use 0 (no standard errors) or at least 2 resamples")
    floor_runs = deck.number("compare", "floor_runs", 1, int, 1, 50)
    base, extra, seed = simulation_setup(deck, out)
    gen_ranks = generate_ranks(deck, 1)
    loop_seconds = {}

    def simulate(chi, s, name, *args):
        path, log = simulate_run(run, base, extra, out, s, name, f"--ks.chi={chi:.17g}", *args)
        loop_seconds[name] = simulate_seconds(log)
        return path

    def floors(chi, offset, *args):
        """The floor runs at chi: the first (seed + 1100 + offset) and floor_runs - 1 more
        (seed + 1200 + 10 r + offset), all independent of the test run."""
        first = simulate(chi, seed + 1100 + offset, f"floor_chi{tag(chi)}", *args)
        return [first] + [simulate(chi, seed + 1200 + 10 * r + offset, f"floor_chi{tag(chi)}_r{r}", *args)
                          for r in range(1, floor_runs)]

    train_files = [simulate(c, seed + 1 + i, f"train_chi{tag(c)}") for i, c in enumerate(chis)]
    test_file = simulate(chi_test, seed + 1000, f"test_chi{tag(chi_test)}")
    floor_files = floors(chi_test, 0)
    floor_file = floor_files[0]
    times = snapshot_times(train_files[0])
    t_end = times[-1]
    for f in train_files + [test_file] + floor_files:
        if len(snapshot_times(f)) != len(times) or abs(snapshot_times(f)[-1] - t_end) > 1e-9 * max(1.0, t_end):
            raise PipelineError(f"{f} stopped early (collapse before t = {t_end:g}?): lower chi or the deck's run.steps")
    with h5py.File(test_file, "r") as f:
        parsed = kh.load_deck(f)
    mass = float(kh.deck_get(parsed, "ks", "mass", 1.0))
    cases = [{"name": "interior", "chi": chi_test, "time": t_end, "test": test_file, "floors": floor_files}]
    if chi_x is not None:
        t_x = deck.number("simulate", "time_extrapolate", t_end, float, 0.0)
        snapshot_index(train_files[0], t_x, "simulate.time_extrapolate")
        steps = int(round(t_x / deck_float(base, extra, "run", "dt")))
        case = {"name": "extrapolation", "chi": chi_x, "time": t_x,
                "test": simulate(chi_x, seed + 1001, f"test_chi{tag(chi_x)}", f"--run.steps={steps}"),
                "floors": floors(chi_x, 1, f"--run.steps={steps}")}
        for f in [case["test"]] + case["floors"]:
            if abs(snapshot_times(f)[-1] - t_x) > 1e-6 * max(1.0, t_x):
                raise PipelineError(f"{f} stopped at t = {snapshot_times(f)[-1]:g}, before simulate.time_extrapolate = "
                                    f"{t_x:g} (chi = {chi_x:g} collapsed): lower chi_extrapolate or time_extrapolate")
        cases.append(case)
    if loo is not None:
        # The training run at the left-out chi is the fresh test run of the models trained without it.
        cases.append({"name": "leave_one_out", "chi": loo, "time": t_end, "test": train_files[chis.index(loo)],
                      "floors": floors(loo, 2)})

    # One model per objective for any (chi, t): every training run's snapshots 1..K, each paired
    # particle by particle with its own initial snapshot, conditioned on (chi, time).
    snapshots = ",".join(str(i) for i in range(1, len(times)))

    # tfm conditions on chi alone: its velocity field is integrated in physical time from the
    # initial particles to t (docs/pipelines.md "Pipeline 1: where an extrapolation can be judged").
    def train(objective, files, suffix=""):
        model = out / "models" / f"{objective}{suffix}.pt"
        tdeck = run.deck(f"train_{objective}{suffix}", train_sections(deck, objective, ",".join(map(str, files)), model, {
            "snapshot": snapshots, "source": "snapshot:0", "condition": KS_CONDITION.get(objective, "ks.chi,time")}))
        run(f"train_{objective}{suffix}", "kinflow-train", [tdeck])
        return model

    objectives = KS_OBJECTIVES
    models = {k: {"model": str(train(k, train_files))} for k in objectives}
    loo_models = {}
    if loo is not None:
        kept = [f for c, f in zip(chis, train_files) if c != loo]
        loo_models = {k: str(train(k, kept, "_loo")) for k in objectives}
    for k in objectives:
        models[k]["loss_file"] = models[k]["model"] + ".loss.csv"

    # The density box and histogram of the interior test (all cases use their own test run's box).
    x_test, _ = read_snapshot(test_file, -1)
    lo, hi = np.quantile(x_test, 0.005, axis=0), np.quantile(x_test, 0.995, axis=0)
    pad = 0.1 * (hi - lo)
    box = [(lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])]
    rng = np.random.default_rng(seed)

    def evaluate(case, model_files, train_chis, train_paths):
        chi, t, test = case["chi"], case["time"], case["test"]
        name = case["name"]
        idx = snapshot_index(train_paths[0], t, "simulate.time_extrapolate")
        gens, torchfree = {}, {}
        for k in objectives:
            gen = out / "gen" / f"{k}_{name}_chi{tag(chi)}.h5"
            when = {"condition": f"{chi:.17g}", "time": f"{t:.17g}"} if k == "tfm" else \
                {"condition": f"{chi:.17g},{t:.17g}"}
            sdeck = run.deck(f"sample_{k}_{name}", sample_sections(deck, k, model_files[k], gen, {
                "count": 0, **when, "source_file": test}, seed + 2000))
            _, stdout = run(f"sample_{k}_{name}", "kinflow-sample", [sdeck], ranks=gen_ranks)
            gens[k] = (gen, sample_seconds(stdout))
            torchfree[k] = generate_torchfree(run, f"{k}_{name}", k, sdeck, gen, gen_ranks)
        order = np.argsort([abs(c - chi) for c in train_chis])
        near = int(order[0])
        # Displacement interpolation between the neighbouring training runs (the two nearest on
        # one side when extrapolating), both at time t.
        below = [i for i in range(len(train_chis)) if train_chis[i] < chi]
        above = [i for i in range(len(train_chis)) if train_chis[i] > chi]
        if below and above:
            a = max(below, key=lambda i: train_chis[i])
            b = min(above, key=lambda i: train_chis[i])
        else:
            a, b = sorted(order[:2], key=lambda i: train_chis[i])
        frac = (chi - train_chis[a]) / (train_chis[b] - train_chis[a])
        interp = out / "gen" / f"interpolation_{name}_chi{tag(chi)}.h5"
        run.compare(f"interpolate_{name}", train_paths[a], train_paths[b], snapshot_a=idx, snapshot_b=idx,
                    max_points=points, interpolate=(frac, interp))
        jobs = {k: (test, gens[k][0], -1, -1) for k in objectives}
        jobs.update({f"floor_r{r}": (test, f, -1, -1) for r, f in enumerate(case["floors"][1:], 1)})
        jobs.update({"floor": (test, case["floors"][0], -1, -1), "nearest": (test, train_paths[near], -1, idx),
                     "interpolation": (test, interp, -1, -1), "initial": (test, test, -1, 0)})
        m = run.compare_many({f"compare_{name}_{k}": v for k, v in jobs.items()}, points, boot)
        res = lambda k: w2_fields(m[f"compare_{name}_{k}"])
        xs = {"simulated": read_snapshot(test, -1)[0], "floor": read_snapshot(case["floors"][0], -1)[0],
              "nearest": read_snapshot(train_paths[near], idx)[0], "interpolation": read_snapshot(interp, -1)[0],
              "initial": read_snapshot(test, 0)[0]}
        xs.update({k: read_snapshot(gens[k][0], -1)[0] for k in objectives})
        mom = {k: moments_with_se(x, mass, box, bins, rng) for k, x in xs.items()}
        metrics = {"simulated": mom["simulated"]}
        for k in objectives:
            metrics[k] = {**res(k), **mom[k]}
        floor = {"chi": chi, "runs": len(case["floors"]), **res("floor"), **mom["floor"]}
        if len(case["floors"]) > 1:
            # The floor over R independent runs: the mean W2 of the test run to each, its SE the
            # larger of the pairs' spread / sqrt(R) and the pairs' bootstrap SE / sqrt(R).
            pairs = [res("floor")] + [res(f"floor_r{r}") for r in range(1, len(case["floors"]))]
            w, e = np.array([q["w2"] for q in pairs]), np.array([q["w2_se"] for q in pairs])
            floor.update({"w2_first": floor["w2"], "w2_first_se": floor["w2_se"], "w2_runs": [fmt(x) for x in w],
                          "w2": fmt(float(np.mean(w))),
                          "w2_se": fmt(max(float(np.std(w, ddof=1)), float(np.sqrt(np.mean(e * e)))) / math.sqrt(len(w)))})
            # One run's bootstrap SE of m2 and peak density resamples its particles only; the runs'
            # spread (test + floors) is the variability of a fresh simulation's value itself.
            runs = [xs["simulated"], xs["floor"]] + [read_snapshot(f, -1)[0] for f in case["floors"][1:]]
            for key, vals in (("m2", [second_moment(x, mass) for x in runs]),
                              ("peak_density", [peak_density(x, mass, box, bins) for x in runs])):
                mom["simulated"].update({f"{key}_runs": [fmt(v) for v in vals], f"{key}_runs_mean": fmt(float(np.mean(vals))),
                                         f"{key}_runs_sd": fmt(float(np.std(vals, ddof=1)))})
        baselines = {"floor": floor,
                     "nearest_training_chi": {"chi": train_chis[near], **res("nearest"), **mom["nearest"]},
                     "displacement_interpolation": {"chi_a": train_chis[a], "chi_b": train_chis[b], "fraction": fmt(frac),
                                                    **res("interpolation"), **mom["interpolation"]},
                     "initial": {**res("initial"), **mom["initial"]}}
        best = min(objectives, key=lambda k: metrics[k]["w2"])
        bm, fl, nb, ip, sim = metrics[best], baselines["floor"], baselines["nearest_training_chi"], \
            baselines["displacement_interpolation"], metrics["simulated"]

        def within(key):
            return abs(bm[key] - sim[key]) <= 3 * math.hypot(bm[f"{key}_se"], sim[f"{key}_se"])
        acceptance = {"best": best, "w2_over_floor": fmt(bm["w2"] / fl["w2"]), "w2_over_nearest": fmt(bm["w2"] / nb["w2"]),
                      "w2_over_interpolation": fmt(bm["w2"] / ip["w2"]),
                      "nearest_minus_best_in_se": fmt((nb["w2"] - bm["w2"]) / math.hypot(nb["w2_se"], bm["w2_se"]))
                      if boot else None,
                      "m2_within_3se": within("m2"), "peak_density_within_3se": within("peak_density"),
                      "passed": bool(bm["w2"] <= 1.3 * fl["w2"] and bm["w2"] <= 0.6 * nb["w2"] and bm["w2"] < ip["w2"]
                                     and within("m2") and within("peak_density"))}
        if "peak_density_runs" in sim:
            n_runs = len(sim["peak_density_runs"])
            for key in ("m2", "peak_density"):
                acceptance[f"{key}_within_3sd_runs"] = bool(
                    abs(bm[key] - sim[key]) <= 3 * math.hypot(bm[f"{key}_se"], sim[f"{key}_runs_sd"]))
                acceptance[f"{key}_vs_runs_mean_in_se"] = fmt(
                    (bm[key] - sim[f"{key}_runs_mean"]) / math.hypot(bm[f"{key}_se"], sim[f"{key}_runs_sd"] / math.sqrt(n_runs)))
        return {"chi": chi, "time": fmt(t), "test": str(test), "floor_file": str(case["floors"][0]),
                "floor_files": [str(f) for f in case["floors"]],
                "generated": {k: str(v[0]) for k, v in gens.items()}, "interpolation_file": str(interp),
                "metrics": metrics, "baselines": baselines, "acceptance": acceptance,
                "sample_seconds_internal": {k: v[1] for k, v in gens.items()}, "torchfree": torchfree}

    results = {}
    for case in cases:
        if case["name"] == "leave_one_out":
            kept = [(c, f) for c, f in zip(chis, train_files) if c != loo]
            results[case["name"]] = evaluate(case, loo_models, [c for c, _ in kept], [f for _, f in kept])
        else:
            results[case["name"]] = evaluate(case, {k: v["model"] for k, v in models.items()}, chis, train_files)
    main = results.pop("interior")
    for k in objectives:
        models[k]["sample_seconds_internal"] = main["sample_seconds_internal"][k]
    nfe_objs = nfe_objectives(deck, "ks_aggregation")
    nfe = ks_nfe_table(deck, run, out, nfe_objs, {k: v["model"] for k, v in models.items()}, train, train_files,
                       main, test_file, f"{chi_test:.17g},{t_end:.17g}", seed, points, boot, gen_ranks) \
        if nfe_objs else None

    t = run.timings
    sim_s = t[f"simulate_test_chi{tag(chi_test)}"]
    timing = {"simulate_test_s": fmt(sim_s),
              "simulate_all_s": fmt(sum(v for k, v in t.items() if k.startswith("simulate_"))),
              **{f"train_{k}_s": fmt(t[f"train_{k}"]) for k in objectives},
              **{f"sample_{k}_s": fmt(t[f"sample_{k}_interior"]) for k in objectives},
              **{f"speedup_{k}": fmt(sim_s / t[f"sample_{k}_interior"]) for k in objectives},
              "sample_ranks": gen_ranks}
    # The same ratio without process start-up (MPI, LibTorch loading): the simulation's time loop
    # against kinflow-sample's network time.
    loop = loop_seconds.get(f"test_chi{tag(chi_test)}")
    if loop and all(models[k]["sample_seconds_internal"] for k in models):
        timing["simulate_test_loop_s"] = fmt(loop)
        for k in models:
            timing[f"sample_{k}_compute_s"] = fmt(models[k]["sample_seconds_internal"])
            timing[f"speedup_{k}_compute"] = fmt(loop / models[k]["sample_seconds_internal"])
    # The generation speed-ups are kinflow-generate's (the same samples without LibTorch, and
    # without MPI when alone) where it ran; kinflow-sample's stay as speedup_*_libtorch.
    tf = {k: v for k, v in main["torchfree"].items() if v}
    if tf:
        timing["generate_torchfree"] = {k: {**v, "speedup_wall": fmt(sim_s / v["wall_s"]),
                                            **({"speedup_compute": fmt(loop / v["compute_s"])} if loop and v["compute_s"] else {})}
                                        for k, v in tf.items()}
        for k, v in timing["generate_torchfree"].items():
            for key in (f"speedup_{k}", f"speedup_{k}_compute"):
                if key in timing:
                    timing[f"{key}_libtorch"] = timing[key]
            timing[f"speedup_{k}"] = v["speedup_wall"]
            if "speedup_compute" in v:
                timing[f"speedup_{k}_compute"] = v["speedup_compute"]
    summary = {
        "problem": {"chi_train": chis, "chi_test": chi_test, "time": fmt(t_end), "particles": int(len(x_test)),
                    "mass": mass, "density_box": [list(map(fmt, b)) for b in box], "density_bins": bins,
                    "compare_points": min(points, len(x_test)), "bootstrap": boot, "floor_runs": floor_runs,
                    "snapshots": snapshots,
                    "condition": "ks.chi,time", "objectives": list(objectives),
                    "conditions": {k: KS_CONDITION[k] for k in objectives}},
        "files": {"train": [str(p) for p in train_files], "test": str(test_file), "floor": str(floor_file),
                  "floor_runs": [str(p) for p in floor_files],
                  "generated": main["generated"], "interpolation": main["interpolation_file"], "models": models},
        "timings": timing, "metrics": main["metrics"], "baselines": main["baselines"], "acceptance": main["acceptance"],
    }
    if nfe:
        # Generation against simulation at each entry: wall (process start-up included) and compute.
        for r in nfe["rows"]:
            r["speedup_wall"] = fmt(sim_s / r["sample_wall_s"])
            if loop and r["sample_compute_s"]:
                r["speedup_compute"] = fmt(loop / r["sample_compute_s"])
            if "generate_wall_s" in r:  # kinflow-generate's figures; kinflow-sample's as *_libtorch
                r["speedup_wall_libtorch"], r["speedup_wall"] = r["speedup_wall"], fmt(sim_s / r["generate_wall_s"])
                if loop and r["generate_compute_s"]:
                    r["speedup_compute_libtorch"] = r.get("speedup_compute")
                    r["speedup_compute"] = fmt(loop / r["generate_compute_s"])
        acc = nfe.get("acceptance")
        if acc:
            best = next(r for r in nfe["rows"] if r["objective"] == acc["best_one_step"] and r["nfe"] == 1)
            acc.update({k: best[k] for k in ("speedup_wall", "speedup_compute") if k in best})
        summary["nfe"] = nfe
    for name, r in results.items():
        r.pop("sample_seconds_internal", None)
        r.pop("torchfree", None)
        summary[name] = r
    return summary


def ks_nfe_table(deck, run, out, objs, models, train, train_files, main, test_file, condition, seed, points, boot,
                 gen_ranks):
    """The NFE-accuracy table at the unseen chi: every [nfe] objective (trained like fm, on every
    snapshot with condition = ks.chi,time; fm and w2map are the pipeline's own models) sampled at
    every count of nfe.counts from the fresh run's initial particles, W2 to the fresh run with its
    SE and over the floor; the acceptance of the one-step family: the best 1-evaluation model
    within 1.2x of fm's W2 at the largest count, and below w2map's."""
    counts = nfe_counts(deck)
    floor = main["baselines"]["floor"]
    trained = {k: str(models[k]) if k in models else str(train(k, train_files)) for k in objs}
    jobs, walls, internal, torchfree = {}, {}, {}, {}
    for k in objs:
        for n in ([1] if k == "w2map" else counts):
            name = f"nfe_{k}_{n}"
            gen = out / "gen" / f"{name}.h5"
            sdeck = run.deck(f"sample_{name}", sample_sections(deck, k, trained[k], gen, {
                "count": 0, "condition": condition, "source_file": test_file, **nfe_sample_keys(k, n)}, seed + 2000))
            walls[(k, n)], stdout = run(f"sample_{name}", "kinflow-sample", [sdeck], ranks=gen_ranks)
            internal[(k, n)] = sample_seconds(stdout)
            torchfree[(k, n)] = generate_torchfree(run, name, k, sdeck, gen, gen_ranks)
            jobs[f"compare_{name}"] = (test_file, gen, -1, -1)
    m = run.compare_many(jobs, points, boot)
    rows = []
    for (k, n), wall in walls.items():
        r = w2_fields(m[f"compare_nfe_{k}_{n}"])
        rows.append({"objective": k, "nfe": n, **r, "w2_over_floor": fmt(r["w2"] / floor["w2"]),
                     "sample_wall_s": fmt(wall), "sample_compute_s": internal[(k, n)]})
        if torchfree[(k, n)]:  # the same samples by kinflow-generate (W2 above: kinflow-sample's)
            tf = torchfree[(k, n)]
            rows[-1].update({"generate_wall_s": tf["wall_s"], "generate_compute_s": tf["compute_s"],
                             "generate_max_rel_diff": tf["max_rel_diff"]})
        run.timings.pop(f"sample_nfe_{k}_{n}", None)
    table = {"objectives": objs, "counts": counts, "floor_w2": floor["w2"], "floor_w2_se": floor["w2_se"],
             "models": trained, "rows": rows}
    table["train_s"] = {k: fmt(run.timings[f"train_{k}"]) for k in objs if f"train_{k}" in run.timings}
    w2map = next((r for r in rows if r["objective"] == "w2map"), main["metrics"]["w2map"])
    one = [r for r in rows if r["nfe"] == 1 and r["objective"] != "w2map"]
    ref = [r for r in rows if r["objective"] == "fm" and r["nfe"] == max(counts)]
    if one and ref:
        best, ref = min(one, key=lambda r: r["w2"]), ref[0]
        table["acceptance"] = {
            "best_one_step": best["objective"], "w2": best["w2"], "w2_se": best["w2_se"],
            "fm_reference_nfe": ref["nfe"], "fm_reference_w2": ref["w2"], "ratio_to_fm": fmt(best["w2"] / ref["w2"]),
            "w2map_w2": w2map["w2"], "below_w2map_in_se": fmt((w2map["w2"] - best["w2"]) / math.hypot(w2map["w2_se"], best["w2_se"]))
            if boot else None,
            "passed": bool(best["w2"] <= 1.2 * ref["w2"] and best["w2"] < w2map["w2"])}
    return table


# ---- pipeline 2: Fokker-Planck --------------------------------------------------------------------

def w2_1d(a, b, rng=None, resamples=0):
    """Exact W2 between two 1D samples of equal size (sorted pairing) and its bootstrap SE."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    w = float(np.sqrt(np.mean((a - b) ** 2)))
    if not resamples:
        return w, float("nan")
    vals = [float(np.sqrt(np.mean((np.sort(a[rng.integers(0, len(a), len(a))]) -
                                   np.sort(b[rng.integers(0, len(b), len(b))])) ** 2))) for _ in range(resamples)]
    return w, float(np.std(vals, ddof=1))


def run_fokker_planck(deck, run, out):
    points = deck.number("compare", "max_points", 4096, int, 2, 20000)
    boot = deck.number("compare", "bootstrap", 5, int, 0, 1000)
    count = deck.number("generate", "count", 10000, int, 2)
    gen_ranks = generate_ranks(deck, run.ranks)
    base, extra, seed = simulation_setup(deck, out)

    def simulate(s, name):
        return simulate_run(run, base, extra, out, s, name)[0]

    train_file = simulate(seed + 1, "train")
    ref_file = simulate(seed + 1000, "reference")
    times = snapshot_times(train_file)
    # One model per objective for every snapshot time after the initial one (condition = time).
    snapshots = ",".join(str(i) for i in range(1, len(times)))
    models, gens = {}, {}
    for objective in ("dsm", "fm"):
        model = out / "models" / f"{objective}.pt"
        tdeck = run.deck(f"train_{objective}", train_sections(deck, objective, train_file, model, {
            "snapshot": snapshots, "source": "gaussian", "condition": "time"}))
        run(f"train_{objective}", "kinflow-train", [tdeck])
        models[objective] = {"model": str(model), "loss_file": str(model) + ".loss.csv"}
    samplers = {"dsm_ode": ("dsm", deck.section("sample.dsm_ode") or {"method": "rk4", "nfe": 100}),
                "dsm_sde": ("dsm", deck.section("sample.dsm_sde") or {"method": "euler-maruyama", "nfe": 500}),
                "fm_ode": ("fm", deck.section("sample.fm_ode") or {"method": "rk4", "nfe": 40})}
    t_end = times[-1]

    def sample(name, objective, keys, t, i):
        gen = out / "gen" / f"{name}_t{i:03d}.h5"
        sdeck = run.deck(f"sample_{name}_t{i:03d}", {"run": {"seed": seed + 2000 + 100 * list(samplers).index(name) + i},
                                                    "sample": {"model_file": models[objective]["model"], "count": count,
                                                               "condition": f"{t:.17g}", **keys},
                                                    "output": {"file": gen}})
        _, stdout = run(f"sample_{name}_t{i:03d}", "kinflow-sample", [sdeck], ranks=gen_ranks)
        return gen, sample_seconds(stdout)

    for name, (objective, keys) in samplers.items():
        gens[name], secs = sample(name, objective, keys, t_end, len(times) - 1)
        models.setdefault(name, {})["sample_seconds_internal"] = secs

    results = {}
    for name, gen in gens.items():
        m = run.compare(f"compare_{name}", ref_file, gen, max_points=points, bootstrap=boot)
        results[name] = {**w2_fields(m), "mean_error": fmt(m["mean_error"]),
                         "cov_error_fro": fmt(m["cov_error_fro"])}
    gap = run.compare("compare_ode_sde", gens["dsm_ode"], gens["dsm_sde"], max_points=points, bootstrap=boot)
    m0 = run.compare("compare_initial", ref_file, ref_file, snapshot_b=0, max_points=points, bootstrap=boot)
    mf = run.compare("compare_independent_run", ref_file, train_file, max_points=points, bootstrap=boot)
    x_ref, _ = read_snapshot(ref_file, -1)

    # The marginal at every snapshot time (ODE samplers of both models) against the reference run,
    # with the floor (the training run against the reference run) at the same point count.
    rng = np.random.default_rng(seed)
    per_time = []
    for i in range(1, len(times)):
        t = times[i]
        x_r, _ = read_snapshot(ref_file, i)
        x_t, _ = read_snapshot(train_file, i)
        n = min(points, count, len(x_r), len(x_t))
        pick = lambda x: x[rng.choice(len(x), n, replace=False)] if len(x) > n else x
        row = {"t": fmt(t)}
        w, e = w2_1d(pick(x_r), pick(x_t), rng, boot) if x_r.shape[1] == 1 else (float("nan"), float("nan"))
        row.update({"w2_floor": fmt(w), "w2_floor_se": fmt(e)})
        for name in ("dsm_ode", "fm_ode"):
            objective, keys = samplers[name]
            gen = gens[name] if i == len(times) - 1 else sample(name, objective, keys, t, i)[0]
            x_g, _ = read_snapshot(gen, -1)
            if x_r.shape[1] == 1:
                w, e = w2_1d(pick(x_r), pick(x_g), rng, boot)
            else:
                m = run.compare(f"compare_{name}_t{i:03d}", ref_file, gen, snapshot_a=i, max_points=n, bootstrap=boot)
                w, e = m["w2_exact"], m.get("w2_exact_se", float("nan"))
            row.update({f"w2_{name}": fmt(w), f"w2_{name}_se": fmt(e)})
        per_time.append(row)
    t = run.timings
    return {
        "problem": {"time": fmt(t_end), "particles": int(len(x_ref)), "dim": int(x_ref.shape[1]), "generated": count,
                    "compare_points": points, "bootstrap": boot, "times": [fmt(x) for x in times[1:]],
                    "condition": "time"},
        "files": {"train": str(train_file), "reference": str(ref_file), "generated": {k: str(v) for k, v in gens.items()},
                  "models": models},
        "timings": {k + "_s": fmt(v) for k, v in t.items() if not k.startswith("sample_") or k.endswith(f"_t{len(times) - 1:03d}")},
        "metrics": results,
        "per_time": per_time,
        "ode_sde_gap": w2_fields(gap),
        "baselines": {"initial": w2_fields(m0), "independent_simulation": w2_fields(mf), "floor": w2_fields(mf)},
    }


# ---- pipeline 3: Boltzmann (BKW) ------------------------------------------------------------------

def bkw_K(tau):
    return -np.expm1(-np.asarray(tau, dtype=float) / 6.0)


def bkw_m4_exact(tau):
    K = bkw_K(tau)
    return 30.0 * K - 15.0 * K * K


def bkw_m6_exact(tau):
    K = bkw_K(tau)
    return 315.0 * K * K - 210.0 * K ** 3


def fourth_moment(v):
    s = np.sum(v * v, axis=1)
    return float(np.mean(s * s)), float(np.std(s * s) / math.sqrt(len(s)))


def sixth_moment(v):
    s = np.sum(v * v, axis=1)
    return float(np.mean(s ** 3)), float(np.std(s ** 3) / math.sqrt(len(s)))


def bkw_speed_chi2(v, tau, bins=40):
    """Pearson chi^2 per degree of freedom of the speed histogram of v against the exact BKW speed
    law at BKW time tau: with probability (5K-3)/(2K) a chi(3) speed, else chi(5), both scaled by
    sqrt(K) (VERIFICATION.md); bins of equal exact probability."""
    from scipy import stats
    K = float(bkw_K(tau))
    w = (5 * K - 3) / (2 * K)
    cdf = lambda x: w * stats.chi.cdf(x, 3, scale=math.sqrt(K)) + (1 - w) * stats.chi.cdf(x, 5, scale=math.sqrt(K))
    speeds = np.sqrt(np.sum(v * v, axis=1))
    edges = [0.0]
    for q in np.linspace(0, 1, bins + 1)[1:-1]:  # quantiles of the exact law by bisection
        lo, hi = 0.0, 20.0 * math.sqrt(K)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
        edges.append(0.5 * (lo + hi))
    counts = np.histogram(speeds, bins=np.array(edges + [np.inf]))[0]
    expected = len(speeds) / bins
    return float(np.sum((counts - expected) ** 2 / expected) / (bins - 1))


def write_like(template, path, v):
    """A copy of the kinflow file `template` whose last snapshot's positions are `v` (same shape):
    the ensemble generator's pooled set, readable by kinflow-compare and read_snapshot."""
    shutil.copyfile(template, path)
    with h5py.File(path, "r+") as f:
        ds = f[kh.list_snapshots(f)[-1]["path"]]["position"]
        if ds.shape != v.shape:
            raise PipelineError(f"{template}: {ds.shape} positions, the pooled set has {v.shape}")
        ds[...] = v


def run_boltzmann(deck, run, out):
    count = deck.number("generate", "count", 50000, int, 2)
    n_times = deck.number("generate", "times", 13, int, 2, 1000)
    gen_ranks = generate_ranks(deck, run.ranks)
    points = deck.number("compare", "max_points", 4096, int, 2, 20000)
    boot = deck.number("compare", "bootstrap", 5, int, 0, 1000)
    members = deck.number("generate", "ensemble", 1, int, 1, 64)
    floor_runs = deck.number("compare", "floor_runs", 1, int, 1, 1000)
    base, extra, seed = simulation_setup(deck, out)

    def simulate(s, name):
        return simulate_run(run, base, extra, out, s, name)[0]

    train_file = simulate(seed + 1, "train")
    times = snapshot_times(train_file)
    # generate.t_max: the end of the reported range (default the last snapshot time). The model
    # trains on every snapshot; with t_max before the last one it is never asked for the edge of its
    # time condition, where every fm model of this problem was measured low in m4 (docs/pipelines.md,
    # "Pipeline 3 routes"). Every reported figure (generated, DSMC, floor, time-blind, the
    # last-time speed law and W2) uses the times t <= t_max only.
    t_max = deck.number("generate", "t_max", times[-1], float, times[0])
    last = snapshot_index(train_file, t_max, "generate.t_max")
    if last == 0:
        raise PipelineError(f"generate.t_max = {t_max:g}: must be a snapshot time after the first")
    ref_file = simulate(seed + 1000, "reference")
    # The floor: DSMC's own mean |m4 - exact| at the same particle count, estimated over the
    # reference run and floor_runs - 1 more independent runs (one run's figure has a relative
    # noise of ~60 %: its SE is the spread over runs / sqrt(runs)).
    floor_files = [ref_file] + [simulate(seed + 1100 + r, f"floor{r}") for r in range(1, floor_runs)]
    with h5py.File(ref_file, "r") as f:
        parsed = kh.load_deck(f)
    if (kh.deck_get(parsed, "dsmc", "init", "") or "").strip() != "bkw" or \
            (kh.deck_get(parsed, "dsmc", "kernel", "") or "").strip() != "maxwell":
        raise PipelineError("boltzmann pipeline: simulate.deck must be a BKW problem (dsmc.init = bkw, kernel = maxwell)")
    t0 = float(kh.deck_get(parsed, "dsmc", "bkw_t0", 6 * math.log(2.5)))
    nu = float(kh.deck_get(parsed, "dsmc", "collision_rate", 1.0))
    objective = deck.section("train").get("objective", "fm")
    if objective not in ("fm", "otfm", "tfm"):
        raise PipelineError(f"train.objective = {objective}: the boltzmann pipeline takes fm, otfm or tfm")
    model = out / "models" / f"{objective}.pt"
    # fm/otfm, source = gaussian: N(0, I) -> the velocity law at time t (condition = time);
    # fm, source = snapshot:0: each particle's initial velocity -> its velocity at t, along the
    # coupling the DSMC run produced (condition = time; generation starts from the reference run's
    # initial velocities, an exact BKW sample); tfm: a velocity field in physical time between
    # consecutive snapshots, integrated from the initial velocities to t (sample.time).
    source = deck.section("train").get("source", "gaussian")
    if source not in ("gaussian", "snapshot:0"):
        raise PipelineError(f"train.source = {source}: the boltzmann pipeline takes gaussian or snapshot:0")
    if objective == "tfm" and source != "snapshot:0":
        raise PipelineError("train.objective = tfm flows from the initial snapshot: set train.source = snapshot:0")
    if objective == "tfm":
        keys = {"snapshot": ",".join(str(i) for i in range(1, len(times))), "source": source}
    else:
        keys = {"snapshot": ",".join(str(i) for i in range(len(times))), "source": source, "condition": "time"}
    # generate.ensemble = K: K models of the same route trained with seeds seed, seed + 1, ... (model
    # initialisation and minibatches; the data are the same run). The generator is their equal-weight
    # mixture: every source particle is mapped by one member drawn without replacement, so the
    # pooled set has the single model's sample count; the members' own errors give the
    # training-to-training spread (reported, and counted in the SE).
    member_models = [model] + [out / "models" / f"{objective}_m{k}.pt" for k in range(1, members)]

    def train_member(k):
        sections = train_sections(deck, objective, train_file, member_models[k], keys)
        sections["run"]["seed"] = seed + k
        name = f"train_{objective}" + (f"_m{k}" if k else "")
        run(name, "kinflow-train", [run.deck(name, sections)])

    if members == 1:
        train_member(0)
    else:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
            for f in [pool.submit(train_member, k) for k in range(members)]:
                f.result()
    gen_keys = {"count": count} if source == "gaussian" else {"count": 0, "source_file": ref_file}

    nfe_keys = {"snapshot": ",".join(str(i) for i in range(len(times))), "source": source, "condition": "time"}
    nfe = bkw_nfe_table(deck, run, out, objective, model, nfe_keys, train_file, gen_keys, times[:last + 1], t0, nu,
                        seed, gen_ranks) \
        if nfe_objectives(deck, "boltzmann") else None
    grid = np.linspace(times[0], times[last], n_times)
    curve = []
    pick = None  # ensemble: the member that maps each source particle
    for i, tg in enumerate(grid):
        when = {"time": f"{tg:.17g}"} if objective == "tfm" else {"condition": f"{tg:.17g}"}
        sets, scales = [], []
        for k in range(members):
            name = f"t{i:03d}" + (f"_m{k}" if k else "")
            gen = out / "gen" / f"{objective}_{name}.h5"
            sdeck = run.deck(f"sample_{name}", sample_sections(deck, "fm", member_models[k], gen, {**gen_keys, **when},
                                                               seed + 2000 + i + 100 * k))
            run(f"sample_{name}", "kinflow-sample", [sdeck], ranks=gen_ranks)
            if k:
                run.timings.pop(f"sample_{name}")
            sets.append((gen, read_snapshot(gen, -1)[0]))
            scales.append(conserve_scale(gen))
        row = {"t": fmt(tg)}
        if scales[0] is not None:
            # sample.conserve = momentum_energy: each set's energy projection factor s (s^2 - 1: the
            # model's relative error in the thermal energy before the projection)
            row["conserve_scale" if members == 1 else "conserve_scale_members"] = \
                fmt(scales[0]) if members == 1 else [fmt(x) for x in scales]
        if members > 1:
            n = min(len(v) for _, v in sets)
            if pick is None:
                pick = np.random.default_rng(seed + 4000).permutation(n) % members
            row["m4_members"] = [fmt(fourth_moment(v)[0]) for _, v in sets]
            row["m6_members"] = [fmt(sixth_moment(v)[0]) for _, v in sets]
            v = np.empty_like(sets[0][1][:n])
            for k, (_, vk) in enumerate(sets):
                v[pick == k] = vk[:n][pick == k]
            gen = out / "gen" / f"{objective}_ensemble_t{i:03d}.h5"
            write_like(sets[0][0], gen, v)
        else:
            gen, v = sets[0]
        m4, se = fourth_moment(v)
        m6, se6 = sixth_moment(v)
        curve.append(row | {"m4_generated": fmt(m4), "m4_generated_se": fmt(se),
                            "m4_exact": fmt(float(bkw_m4_exact(t0 + nu * tg))),
                            "m6_generated": fmt(m6), "m6_generated_se": fmt(se6),
                            "m6_exact": fmt(float(bkw_m6_exact(t0 + nu * tg))), "file": str(gen)})

    def dsmc_rows(path):
        rows = []
        with h5py.File(path, "r") as f:
            snaps = kh.list_snapshots(f)[:last + 1]
            for s in snaps:
                v = kh.read_positions(f, s)
                m4, se = fourth_moment(v)
                m6, se6 = sixth_moment(v)
                rows.append({"t": fmt(s["time"]), "m4_dsmc": fmt(m4), "m4_dsmc_se": fmt(se),
                             "m4_exact": fmt(float(bkw_m4_exact(t0 + nu * s["time"]))),
                             "m6_dsmc": fmt(m6), "m6_dsmc_se": fmt(se6),
                             "m6_exact": fmt(float(bkw_m6_exact(t0 + nu * s["time"])))})
            return rows, kh.read_positions(f, snaps[-1])
    dsmc, v_end_dsmc = dsmc_rows(ref_file)
    with h5py.File(train_file, "r") as f:
        pooled = np.concatenate([kh.read_positions(f, s) for s in kh.list_snapshots(f)[:last + 1]])
    m4_pool, _ = fourth_moment(pooled)
    m6_pool, _ = sixth_moment(pooled)

    def mean_abs(rows, key, ref="exact", value=None):
        """Mean |value - exact| over rows and its standard error sqrt(sum se_i^2) / n."""
        errs = [abs((value if value is not None else r[f"{key}_{ref}"]) - r[f"{key}_exact"]) for r in rows]
        ses = [0.0 if value is not None else r[f"{key}_{ref}_se"] for r in rows]
        return fmt(float(np.mean(errs))), fmt(math.sqrt(sum(x * x for x in ses)) / len(ses))
    err_gen, err_gen_se = mean_abs(curve, "m4", "generated")
    err_dsmc, err_dsmc_se = mean_abs(dsmc, "m4", "dsmc")
    err_pool, _ = mean_abs(curve, "m4", value=m4_pool)
    err6_gen, err6_gen_se = mean_abs(curve, "m6", "generated")
    err6_dsmc, err6_dsmc_se = mean_abs(dsmc, "m6", "dsmc")
    # Cross-check of the floor without more runs: an unbiased estimate with Gaussian noise of SE s_t
    # has E|error| = sqrt(2/pi) s_t, so an unbiased DSMC's expected figure is the mean of that.
    floor_extra = {"m4_mean_abs_error_dsmc_expected_if_unbiased":
                   fmt(math.sqrt(2 / math.pi) * float(np.mean([r["m4_dsmc_se"] for r in dsmc])))}
    if floor_runs > 1:
        per_run = [(err_dsmc, err6_dsmc)] + [(mean_abs(r, "m4", "dsmc")[0], mean_abs(r, "m6", "dsmc")[0])
                                            for r in (dsmc_rows(p)[0] for p in floor_files[1:])]
        e4, e6 = np.array(per_run).T
        err_dsmc, err_dsmc_se = fmt(float(e4.mean())), fmt(float(e4.std(ddof=1) / math.sqrt(len(e4))))
        err6_dsmc, err6_dsmc_se = fmt(float(e6.mean())), fmt(float(e6.std(ddof=1) / math.sqrt(len(e6))))
        floor_extra |= {"floor_runs": floor_runs, "m4_mean_abs_error_dsmc_runs": [fmt(x) for x in e4],
                       "m6_mean_abs_error_dsmc_runs": [fmt(x) for x in e6]}
    training = {}
    if members > 1:
        # Each member's own error (the single-model figure and its training-to-training spread), and
        # the ensemble figure's training SE: bootstrap over members of the mixture's m4(t) (the mean
        # of the members' full-set m4(t): the mixture's moment at equal weights).
        exact4 = np.array([r["m4_exact"] for r in curve])
        m4k = np.array([r["m4_members"] for r in curve])  # [times, members]
        single = np.mean(np.abs(m4k - exact4[:, None]), axis=0)
        boot_rng = np.random.default_rng(seed + 5000)
        draws = [float(np.mean(np.abs(m4k[:, boot_rng.integers(0, members, members)].mean(axis=1) - exact4)))
                 for _ in range(1000)]
        train_se = float(np.std(draws, ddof=1))
        training = {"ensemble": members,
                    "m4_mean_abs_error_members": [fmt(x) for x in single],
                    "m4_mean_abs_error_single_model": fmt(float(single.mean())),
                    "m4_mean_abs_error_single_model_se": fmt(float(single.std(ddof=1) / math.sqrt(members))),
                    "m4_mean_abs_error_single_model_spread": fmt(float(single.std(ddof=1))),
                    "m4_mean_abs_error_generated_training_se": fmt(train_se),
                    "m4_mean_abs_error_generated_total_se": fmt(math.hypot(err_gen_se, train_se))}
    err6_pool, _ = mean_abs(curve, "m6", value=m6_pool)
    # The speed law at the last time against the exact BKW density: chi^2 per dof of generated and
    # of DSMC (the DSMC's own distance is the yardstick).
    v_end_gen, _ = read_snapshot(Path(curve[-1]["file"]), -1)
    tau_end = t0 + nu * times[last]
    chi2_gen, chi2_dsmc = bkw_speed_chi2(v_end_gen, tau_end), bkw_speed_chi2(v_end_dsmc, tau_end)
    # W2 at the last time: generated vs the reference run's last snapshot, with the floor (two DSMC runs).
    w2 = run.compare_many({"compare_end": (ref_file, Path(curve[-1]["file"]), last, -1),
                           "compare_initial": (ref_file, ref_file, last, 0),
                           "compare_independent_run": (ref_file, train_file, last, last)}, points, boot)
    se = lambda k: fmt(w2[k].get("w2_exact_se", float("nan")))
    t = run.timings
    if nfe:
        nfe["dsmc_m4_mean_abs_error"], nfe["dsmc_m4_mean_abs_error_se"] = err_dsmc, err_dsmc_se
        for r in nfe["rows"]:
            r["ratio_to_dsmc"] = fmt(r["m4_mean_abs_error"] / err_dsmc)
    return ({"nfe": nfe} if nfe else {}) | {
        "problem": {"times": [fmt(x) for x in times], "t_max": fmt(times[last]),
                    "conserve": deck.section("sample.fm").get("conserve", "none"), "bkw_t0": t0, "collision_rate": nu, "source": source,
                    "objective": objective,
                    "generated": count if source == "gaussian" else int(len(pooled) // (last + 1)),
                    "particles": int(len(pooled) // (last + 1)), "compare_points": points, "bootstrap": boot,
                    "speed_bins": 40},
        "files": {"train": str(train_file), "reference": str(ref_file), "floor_runs": [str(p) for p in floor_files],
                  "models": {objective: {"model": str(model), "loss_file": str(model) + ".loss.csv"}},
                  "ensemble_models": [str(m) for m in member_models]},
        "timings": {"simulate_s": fmt(t["simulate_reference"]), "train_s": fmt(t[f"train_{objective}"]),
                    "sample_per_time_s": fmt(float(np.mean([v for k, v in t.items() if k.startswith("sample_t")])))},
        "m4_curve": curve, "m4_dsmc": dsmc,
        "metrics": {"m4_mean_abs_error_generated": err_gen, "m4_mean_abs_error_generated_se": err_gen_se,
                    "m4_mean_abs_error_dsmc": err_dsmc, "m4_mean_abs_error_dsmc_se": err_dsmc_se,
                    "m4_error_ratio_to_dsmc": fmt(err_gen / err_dsmc), **training, **floor_extra,
                    "m6_mean_abs_error_generated": err6_gen, "m6_mean_abs_error_generated_se": err6_gen_se,
                    "m6_mean_abs_error_dsmc": err6_dsmc, "m6_mean_abs_error_dsmc_se": err6_dsmc_se,
                    "speed_chi2_generated": fmt(chi2_gen), "speed_chi2_dsmc": fmt(chi2_dsmc),
                    "w2_end": fmt(w2["compare_end"]["w2_exact"]), "w2_end_se": se("compare_end")},
        "baselines": {"m4_mean_abs_error_time_blind": err_pool, "m4_time_blind": fmt(m4_pool),
                      "m6_mean_abs_error_time_blind": err6_pool, "m6_time_blind": fmt(m6_pool),
                      "w2_initial_vs_end": fmt(w2["compare_initial"]["w2_exact"]), "w2_initial_vs_end_se": se("compare_initial"),
                      "w2_independent_runs_end": fmt(w2["compare_independent_run"]["w2_exact"]),
                      "w2_independent_runs_end_se": se("compare_independent_run"),
                      "floor": {"w2": fmt(w2["compare_independent_run"]["w2_exact"]), "w2_se": se("compare_independent_run"),
                                "m4_mean_abs_error": err_dsmc, "m4_mean_abs_error_se": err_dsmc_se,
                                "m6_mean_abs_error": err6_dsmc, "speed_chi2": fmt(chi2_dsmc)}},
    }


def bkw_nfe_table(deck, run, out, objective, model, keys, train_file, gen_keys, times, t0, nu, seed, gen_ranks):
    """The NFE-accuracy table of BKW: every [nfe] objective (trained with the pipeline's data keys;
    the pipeline's own model for its objective) sampled at every count of nfe.counts at nfe.times
    times equally spaced over `times` (the reported snapshot times); mean |m4 - exact| with its SE per entry."""
    counts = nfe_counts(deck)
    grid = np.linspace(times[0], times[-1], deck.number("nfe", "times", 4, int, 1, 1000))
    rows, trained = [], {}
    for k in nfe_objectives(deck, "boltzmann"):
        if k == objective:
            trained[k] = str(model)
        else:
            trained[k] = str(out / "models" / f"{k}.pt")
            run(f"train_{k}", "kinflow-train", [run.deck(f"train_{k}", train_sections(deck, k, train_file, trained[k], keys))])
        # the generator's sample.conserve (sample.fm's) for every objective of the table, so its
        # rows compare the networks under the same projection ([sample.OBJECTIVE] may override)
        conserve = {} if "conserve" in deck.section(f"sample.{k}") or "conserve" not in deck.section("sample.fm") \
            else {"conserve": deck.section("sample.fm")["conserve"]}
        for n in counts:
            errs, ses = [], []
            for i, tg in enumerate(grid):
                name = f"nfe_{k}_{n}_t{i:03d}"
                gen = out / "gen" / f"{name}.h5"
                sdeck = run.deck(f"sample_{name}", sample_sections(deck, k, trained[k], gen, {
                    **conserve, **gen_keys, "condition": f"{tg:.17g}", **nfe_sample_keys(k, n)}, seed + 3000 + i))
                run(f"sample_{name}", "kinflow-sample", [sdeck], ranks=gen_ranks)
                run.timings.pop(f"sample_{name}")
                m4, se = fourth_moment(read_snapshot(gen, -1)[0])
                errs.append(abs(m4 - float(bkw_m4_exact(t0 + nu * tg))))
                ses.append(se)
                gen.unlink()
            rows.append({"objective": k, "nfe": n, "m4_mean_abs_error": fmt(float(np.mean(errs))),
                         "m4_mean_abs_error_se": fmt(math.sqrt(sum(x * x for x in ses)) / len(ses))})
    return {"objectives": list(trained), "counts": counts, "times": [fmt(x) for x in grid], "models": trained,
            "train_s": {k: fmt(run.timings[f"train_{k}"]) for k in trained}, "rows": rows}


# ---- pipeline 4: normal shock ---------------------------------------------------------------------

K_BOLTZMANN_SI = 1.380649e-23


def rankine_hugoniot(mach):
    """Downstream / upstream density and temperature of a normal shock in a monatomic gas (gamma =
    5/3): n2/n1 = 4M^2/(M^2 + 3), T2/T1 = (5M^2 - 1)(M^2 + 3)/(16 M^2) (VERIFICATION.md; e.g.
    Landau & Lifshitz, Fluid Mechanics, section 89)."""
    m2 = mach * mach
    return 4 * m2 / (m2 + 3), (5 * m2 - 1) * (m2 + 3) / (16 * m2)


class ShockDeck:
    """The upstream state of the [simulate] deck (after its overrides), the Rankine-Hugoniot
    downstream state of each Mach number, and the units of the aligned data: x in upstream mean
    free paths lambda_1 from the density midpoint, velocities in c1 = sqrt(k T1/m)."""

    def __init__(self, base, extra):
        get = lambda k: deck_float(base, extra, "dsmc", k)  # noqa: E731
        cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
        cp.read(base)
        text = lambda k, d: extra.get(f"dsmc.{k}", cp["dsmc"].get(k, d)).split(",")[0].strip()  # noqa: E731
        if text("space", "") != "grid" or text("init", "") != "riemann":
            raise PipelineError("simulate.deck: the shock pipeline needs a dsmc deck with space = grid and init = riemann "
                                "(inputs/dsmc_shock_mach3.ini)")
        self.kernel = text("kernel", "maxwell")
        if self.kernel not in ("vhs", "vss", "hard_sphere"):
            raise PipelineError(f"dsmc.kernel = {self.kernel}: the shock pipeline needs vhs, vss or hard_sphere "
                                "(lambda_1 from their viscosity)")
        self.k = K_BOLTZMANN_SI if text("units", "normalized") == "si" else 1.0
        self.n1, self.T1, self.m = get("number_density"), float(text("temperature", "1")), float(text("mass", "1"))
        self.c1 = math.sqrt(self.k * self.T1 / self.m)
        from plot_dsmc_fields import upstream_mean_free_path
        self.lam1 = upstream_mean_free_path(self.kernel, self.m, float(text("d_ref", "1")), float(text("omega", "0.5")),
                                            float(text("T_ref", str(self.T1))), self.n1, self.T1, self.k)
        self.dt = deck_float(base, extra, "run", "dt")
        self.average_from = int(deck_float(base, extra, "dsmc", "average_from"))
        if self.average_from < 0:
            raise PipelineError("dsmc.average_from: the shock pipeline needs time-averaged fields (>= 0)")

    def u1(self, mach):
        """Upstream speed in units of c1: M sqrt(gamma)."""
        return mach * math.sqrt(5 / 3)

    def overrides(self, mach):
        """kinflow-simulate options of the shock at `mach`: the upstream state of the deck flowing in
        at u1 = M sqrt(5 k T1 / (3 m)) through xlo, the Rankine-Hugoniot state through xhi, the same
        two states on either side of riemann_x0 at the start, particle snapshots on."""
        r, t = rankine_hugoniot(mach)
        u1 = self.u1(mach) * self.c1
        n2, T2, u2 = r * self.n1, t * self.T1, u1 / r
        g = lambda v: f"{v:.10g}"  # noqa: E731
        return [f"--dsmc.drift={g(u1)},0,0", f"--dsmc.density_right={g(n2)}", f"--dsmc.temperature_right={g(T2)}",
                f"--dsmc.drift_right={g(u2)},0,0", f"--dsmc.inflow_density={g(self.n1)},{g(n2)},1,1,1,1",
                f"--dsmc.inflow_temperature={g(self.T1)},{g(T2)},1,1,1,1",
                f"--dsmc.inflow_velocity={g(u1)},0,0,{g(u2)},0,0" + ",0" * 12, "--output.particles=true"]

    def midpoint(self, path, mach):
        """x of the density midpoint n = (n1 + n2)/2 (n2 the Rankine-Hugoniot value) of the run's
        time-averaged fields (the last /fields group; 3-cell running mean, linear between cells)."""
        r, _ = rankine_hugoniot(mach)
        with h5py.File(path, "r") as f:
            x = np.asarray(f["grid/x"])
            last = sorted(f["fields"].keys())[-1]
            n = np.asarray(f["fields"][last]["number_density"]).mean(axis=(0, 1)) / self.n1
        sm = np.convolve(n, np.ones(3) / 3, mode="same")[1:-1]
        xs = x[1:-1]
        mid = 0.5 * (1 + r)
        above = np.nonzero(sm >= mid)[0]
        if not len(above) or above[0] == 0:
            raise PipelineError(f"{path}: no density rise through (n1 + n2)/2 in the time-averaged fields (shock left the box?)")
        i = above[0]
        return float(xs[i - 1] + (mid - sm[i - 1]) / (sm[i] - sm[i - 1]) * (xs[i] - xs[i - 1]))

    def snapshots(self, path, mach, window):
        """The run's particle snapshots from dsmc.average_from on, aligned: rows (xi, v_x, v_y) and
        (xi, v_x, v_z) per particle with |xi| <= window, xi = (x - midpoint)/lambda_1, v / c1 (the
        steady shock is axisymmetric about x, so v_z is v_y's twin: two rows of one law). One array
        per snapshot, and the midpoint."""
        x_mid = self.midpoint(path, mach)
        out = []
        with h5py.File(path, "r") as f:
            for s in kh.list_snapshots(f):
                if s["step"] < self.average_from:
                    continue
                x = np.asarray(f[s["path"]]["position"])[:, 0]
                v = np.asarray(f[s["path"]]["velocity"]) / self.c1
                xi = (x - x_mid) / self.lam1
                keep = np.abs(xi) <= window
                out.append(np.concatenate([np.stack([xi[keep], v[keep, 0], v[keep, 1]], axis=1),
                                           np.stack([xi[keep], v[keep, 0], v[keep, 2]], axis=1)]))
        if len(out) < 2:
            raise PipelineError(f"{path}: fewer than 2 particle snapshots after dsmc.average_from: "
                                "lower output.every or raise run.steps")
        return out, x_mid


def write_aligned(src, dst, rows, mach, x_mid, sd):
    """A kinflow file holding one snapshot of the aligned rows (xi, v_x, v_{y|z}) of a shock run and
    its recorded deck with a [shock] section (mach, the midpoint, the units) that train.condition =
    shock.mach reads."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        g.attrs["deck"] = (kh.to_str(f.attrs["deck"]) + f"\n[shock]\nmach = {mach:.17g}\nmidpoint = {x_mid:.17g}\n"
                           f"lambda1 = {sd.lam1:.17g}\nc1 = {sd.c1:.17g}\n"
                           "# position = ((x - midpoint) / lambda1, v_x / c1, v_y / c1 or v_z / c1)\n")
        s = g.create_group("snapshots/000000")
        s.create_dataset("position", data=rows)
        s.create_dataset("id", data=np.arange(len(rows), dtype=np.int64))
        s.attrs["time"], s.attrs["step"] = 0.0, np.int64(0)


def shock_profile(parts, edges, u1):
    """n/n1, T/T1 and u/c1 in the bins `edges` of xi from rows (xi, v_x, v_perp) pooled over
    `parts` (replicates: DSMC snapshot batches, or batches of generated rows), each with the
    standard error std(replicates)/sqrt(R). n from the exactly constant mass flux of a steady 1D
    shock, n u = n1 u1; T = (var v_x + 2 var v_perp)/3 in units of T1."""
    def one(rows):
        b = np.digitize(rows[:, 0], edges) - 1
        ok = (b >= 0) & (b < len(edges) - 1)
        nb = len(edges) - 1
        cnt = np.bincount(b[ok], minlength=nb).astype(float)
        if cnt.min() < 2:
            return None
        mom = lambda v: np.bincount(b[ok], weights=v[ok], minlength=nb) / cnt  # noqa: E731
        u = mom(rows[:, 1])
        T = (mom(rows[:, 1] ** 2) - u ** 2 + 2 * (mom(rows[:, 2] ** 2) - mom(rows[:, 2]) ** 2)) / 3
        return np.stack([u1 / u, T, u])
    whole = one(np.concatenate(parts))
    if whole is None:
        raise PipelineError("an empty profile bin: fewer compare.profile_bins or more particles")
    reps = [r for r in (one(p) for p in parts) if r is not None]
    se = np.std(reps, axis=0, ddof=1) / math.sqrt(len(reps))
    return {"n": whole[0], "T": whole[1], "u": whole[2], "n_se": se[0], "T_se": se[1], "u_se": se[2]}


def profile_error(a, b, key, rng, resamples):
    """RMS over the bins of a[key] - b[key] and its SE from `resamples` parametric bootstrap draws of
    both profiles (each bin Gaussian about its value with its standard error)."""
    err = lambda x, y: float(np.sqrt(np.mean((x - y) ** 2)))  # noqa: E731
    e = err(a[key], b[key])
    draws = [err(a[key] + a[key + "_se"] * rng.standard_normal(len(a[key])),
                 b[key] + b[key + "_se"] * rng.standard_normal(len(b[key]))) for _ in range(max(2, resamples))]
    return fmt(e), fmt(float(np.std(draws, ddof=1)))


def batches(rows, count, rng):
    """`count` random batches of the rows (replicates of an iid sample)."""
    return np.array_split(rows[rng.permutation(len(rows))], count)


def run_shock(deck, run, out):
    machs = deck.numbers("simulate", "mach_train", lo=1.0)
    mach_test = deck.numbers("simulate", "mach_test", lo=1.0)[0]
    if len(machs) < 2 or min(machs) <= 1.0:
        raise PipelineError("simulate.mach_train: at least two Mach numbers > 1 are needed to learn a Mach dependence")
    if mach_test in machs or mach_test <= 1.0:
        raise PipelineError(f"simulate.mach_test = {mach_test:g}: must be > 1 and not a training Mach number")
    window = deck.number("compare", "window", 8.0, float, 1.0, 1000.0)
    nbins = deck.number("compare", "profile_bins", 32, int, 4, 10000)
    mid_w = deck.number("compare", "mid_width", 0.5, float, 1e-3, 100.0)
    points = deck.number("compare", "max_points", 4096, int, 2, 20000)
    boot = deck.number("compare", "bootstrap", 20, int, 0, 1000)
    reps = deck.number("compare", "replicates", 10, int, 2, 1000)
    count = deck.number("generate", "count", 200000, int, 100)
    if boot == 1:
        raise PipelineError("compare.bootstrap = 1: use 0 (no standard errors) or at least 2 resamples")
    base, extra, seed = simulation_setup(deck, out)
    sd = ShockDeck(base, extra)
    gen_ranks = generate_ranks(deck, run.ranks)
    rng = np.random.default_rng(seed)

    def simulate(mach, s, name):
        path, _ = simulate_run(run, base, extra, out, s, name, *sd.overrides(mach))
        parts, x_mid = sd.snapshots(path, mach, window)
        return {"mach": mach, "file": path, "parts": parts, "midpoint": x_mid}

    train_runs = [simulate(M, seed + 1 + i, f"train_mach{tag(M)}") for i, M in enumerate(machs)]
    test = simulate(mach_test, seed + 1000, f"test_mach{tag(mach_test)}")
    floor = simulate(mach_test, seed + 1100, f"floor_mach{tag(mach_test)}")

    # One model of the aligned rows (xi, v_x, v_perp) of every training Mach, conditioned on it.
    data = []
    for r in train_runs:
        r["aligned"] = out / "sim" / f"train_mach{tag(r['mach'])}_aligned.h5"
        write_aligned(r["file"], r["aligned"], np.concatenate(r["parts"]), r["mach"], r["midpoint"], sd)
        data.append(str(r["aligned"]))
    model = out / "models" / "fm.pt"
    tdeck = run.deck("train_fm", train_sections(deck, "fm", ",".join(data), model, {"condition": "shock.mach"}))
    run("train_fm", "kinflow-train", [tdeck])
    gen = out / "gen" / f"fm_mach{tag(mach_test)}.h5"
    sdeck = run.deck("sample_fm", sample_sections(deck, "fm", model, gen, {"count": count, "condition": f"{mach_test:.17g}"},
                                                  seed + 2000))
    _, stdout = run("sample_fm", "kinflow-sample", [sdeck], ranks=gen_ranks)
    rows_gen, _ = read_snapshot(gen, -1)

    # Profiles in the bins of [-window, window] (replicates: batches of DSMC snapshots in time order,
    # random batches of the generated rows).
    edges = np.linspace(-window, window, nbins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    u1t = sd.u1(mach_test)

    def snapshot_batches(parts):
        k = min(reps, len(parts))
        return [np.concatenate(b) for b in np.array_split(np.array(parts, dtype=object), k)]
    prof = {"simulated": shock_profile(snapshot_batches(test["parts"]), edges, u1t),
            "floor": shock_profile(snapshot_batches(floor["parts"]), edges, u1t),
            "generated": shock_profile(batches(rows_gen, reps, rng), edges, u1t)}
    for r in train_runs:
        r["profile"] = shock_profile(snapshot_batches(r["parts"]), edges, sd.u1(r["mach"]))
    dist = [abs(r["mach"] - mach_test) for r in train_runs]
    nearest = [r for r, d in zip(train_runs, dist) if d <= min(dist) + 1e-12]  # a tie: both neighbours
    below = [r for r in train_runs if r["mach"] < mach_test]
    above = [r for r in train_runs if r["mach"] > mach_test]
    if below and above:
        a, b = max(below, key=lambda r: r["mach"]), min(above, key=lambda r: r["mach"])
    else:
        a, b = sorted(sorted(train_runs, key=lambda r: abs(r["mach"] - mach_test))[:2], key=lambda r: r["mach"])
    frac = (mach_test - a["mach"]) / (b["mach"] - a["mach"])
    # Linear interpolation in M of the normalised profiles at each xi (n/n1, T/T1).
    prof["interpolation"] = {k: (1 - frac) * a["profile"][k] + frac * b["profile"][k] for k in ("n", "T", "u")}
    prof["interpolation"].update({f"{k}_se": np.hypot((1 - frac) * a["profile"][f"{k}_se"], frac * b["profile"][f"{k}_se"])
                                  for k in ("n", "T", "u")})

    # Mid-shock v_x (|xi| < mid_width / 2): exact 1D W2 at one point count, bootstrap SE.
    def mid_vx(rows):
        return rows[np.abs(rows[:, 0]) < mid_w / 2, 1]
    mids = {"simulated": mid_vx(np.concatenate(test["parts"])), "floor": mid_vx(np.concatenate(floor["parts"])),
            "generated": mid_vx(rows_gen)}
    for r in train_runs:
        r["mid"] = mid_vx(np.concatenate(r["parts"]))
    n_mid = min(points, *(len(v) for v in mids.values()), *(len(r["mid"]) for r in nearest))
    if n_mid < 50:
        raise PipelineError(f"only {n_mid} particles mid-shock (|xi| < {mid_w / 2:g}): raise compare.mid_width or the particles")
    # McCann interpolation in 1D: the quantile functions' average, at n_mid equally spaced levels.
    q = (np.arange(n_mid) + 0.5) / n_mid
    mids["interpolation"] = (1 - frac) * np.quantile(a["mid"], q) + frac * np.quantile(b["mid"], q)
    sub = lambda v: v[rng.choice(len(v), n_mid, replace=False)] if len(v) > n_mid else v  # noqa: E731
    ref_mid = sub(mids["simulated"])

    def w2_mid(v):
        w, se = w2_1d(ref_mid, sub(v), rng, boot)
        return {"w2_mid_vx": fmt(w), "w2_mid_vx_se": fmt(se)}

    def errors(p, mid):
        e = {}
        for key in ("n", "T"):
            e[f"{key}_profile_error"], e[f"{key}_profile_error_se"] = profile_error(p, prof["simulated"], key, rng, boot)
        return {**e, **w2_mid(mid)}
    metrics = {"generated": errors(prof["generated"], mids["generated"])}
    near = [{"mach": r["mach"], **errors(r["profile"], r["mid"])} for r in nearest]
    baselines = {"floor": errors(prof["floor"], mids["floor"]),
                 "nearest_training_mach": min(near, key=lambda e: e["n_profile_error"] + e["T_profile_error"]),
                 "interpolation": {"mach_a": a["mach"], "mach_b": b["mach"], "fraction": fmt(frac),
                                   **errors(prof["interpolation"], mids["interpolation"])}}
    if len(near) > 1:
        baselines["nearest_training_mach"]["tied_with"] = [e for e in near if e is not baselines["nearest_training_mach"]]

    def beats(key, other):
        g, o = metrics["generated"], baselines[other]
        return fmt((o[key] - g[key]) / math.hypot(o[f"{key}_se"], g[f"{key}_se"])) if boot else None
    acceptance = {f"{key}_nearest_minus_generated_in_se": beats(key, "nearest_training_mach")
                  for key in ("n_profile_error", "T_profile_error", "w2_mid_vx")}
    acceptance.update({f"{key}_over_floor": fmt(metrics["generated"][key] / baselines["floor"][key])
                       for key in ("n_profile_error", "T_profile_error", "w2_mid_vx")})
    # A bimodal v_x mid-shock: the upstream and downstream beams (u1 and u2 = u1 n1/n2 in c1 units).
    r_test, t_test = rankine_hugoniot(mach_test)
    t = run.timings
    profiles = {"xi": [fmt(x) for x in centres]}
    for k, p in prof.items():
        profiles[k] = {key: [fmt(v) for v in p[key]] for key in ("n", "n_se", "T", "T_se")}
    hist_edges = np.linspace(min(v.min() for v in mids.values()), max(v.max() for v in mids.values()), 41)
    return {
        "problem": {"mach_train": machs, "mach_test": mach_test, "rankine_hugoniot_test": {"n2_over_n1": fmt(r_test),
                    "T2_over_T1": fmt(t_test), "u1_over_c1": fmt(u1t), "u2_over_c1": fmt(u1t / r_test)},
                    "lambda1": sd.lam1, "c1": sd.c1, "window": window, "profile_bins": nbins, "mid_width": mid_w,
                    "mid_points": n_mid, "replicates": reps, "bootstrap": boot, "generated": count,
                    "training_rows": int(sum(len(np.concatenate(r["parts"])) for r in train_runs)),
                    "midpoints": {r["file"].stem: fmt(r["midpoint"]) for r in train_runs + [test, floor]},
                    "condition": "shock.mach", "data": "(x - x_mid)/lambda1, v_x/c1, v_y/c1 (and v_z/c1 rows)"},
        "files": {"train": [str(r["file"]) for r in train_runs], "aligned": data, "test": str(test["file"]),
                  "floor": str(floor["file"]), "generated": str(gen),
                  "models": {"fm": {"model": str(model), "loss_file": str(model) + ".loss.csv"}}},
        "timings": {"simulate_test_s": fmt(t[f"simulate_test_mach{tag(mach_test)}"]),
                    "simulate_all_s": fmt(sum(v for k, v in t.items() if k.startswith("simulate_"))),
                    "train_fm_s": fmt(t["train_fm"]), "sample_fm_s": fmt(t["sample_fm"]),
                    "sample_fm_compute_s": sample_seconds(stdout)},
        "profiles": profiles,
        "mid_vx_histogram": {"edges": [fmt(x) for x in hist_edges],
                             **{k: [int(c) for c in np.histogram(v, hist_edges)[0]] for k, v in mids.items()}},
        "metrics": metrics, "baselines": baselines, "acceptance": acceptance,
    }


KINDS = {"ks_aggregation": run_ks_aggregation, "fokker_planck": run_fokker_planck, "boltzmann": run_boltzmann,
         "shock": run_shock}

DECK_KEYS = """pipeline deck keys (INI; every key can be overridden with --set section.key=value):
  [pipeline]  kind = ks_aggregation | fokker_planck | boltzmann | shock (required)
              out = run directory (required unless --out); ranks = MPI ranks per driver call (2);
              seed = base seed (1): training runs seed+1.., the test/reference run seed+1000, its
              floor run (a second independent simulation) seed+1100.., samplers seed+2000..;
              model initialisation and minibatches use seed
  [simulate]  deck = the kinflow-simulate deck, relative to the repository (required);
              section.key = value: any key of that deck, passed as --section.key=value
              (e.g. ks.particles = 4096; --set simulate.ks.particles=1024);
              ks_aggregation only: chi_train = comma list (>= 2 values), chi_test = one value
              not among them (the unseen parameter); chi_extrapolate = none | a value outside
              the training range, tested at time_extrapolate = a snapshot time (default the last;
              its runs stop there, e.g. before a larger chi collapses); leave_one_out = none | an
              interior training value: the models are trained again without that run and tested
              at its chi (its own run is the fresh test, a new run the floor);
              shock only: mach_train = comma list of Mach numbers > 1 (>= 2 values), mach_test =
              one value > 1 not among them; each run is the deck's upstream state at the Mach
              number with its Rankine-Hugoniot downstream state (gamma = 5/3) set by dsmc.drift,
              *_right and inflow_* overrides, output.particles = true; the deck must be a dsmc
              space = grid, init = riemann shock with a vhs, vss or hard_sphere kernel and
              dsmc.average_from >= 0 (its particle snapshots from then on are the data)
  [train]     keys of kinflow-train's [train] section shared by every model of the pipeline
              (hidden, layers, steps, lr, batch_size, condition_embedding, ...; see kinflow-train
              --help); boltzmann also takes objective = fm | otfm | tfm and source = gaussian |
              snapshot:0 here. ks_aggregation trains on every snapshot after the first with
              condition = ks.chi,time (w2map, fm) or ks.chi with the time integrated (tfm,
              its coupling in [train.tfm]); fokker_planck with condition = time; shock trains fm on
              the aligned rows (xi, v_x, v_perp) of every training run with condition = shock.mach
  [train.OBJECTIVE]  per-model kinflow-train keys: ks_aggregation w2map, fm, tfm; fokker_planck
              dsm, fm; boltzmann fm | otfm | tfm; and the [nfe] objectives
  [sample.NAME]  kinflow-sample keys (method, nfe, ...): ks_aggregation sample.w2map,
              sample.fm, sample.tfm; fokker_planck sample.dsm_ode (default rk4, nfe 100), sample.dsm_sde
              (euler-maruyama, nfe 500), sample.fm_ode (rk4, nfe 40); boltzmann, shock sample.fm
  [generate]  count = samples per generated set (fokker_planck 10000; boltzmann 50000 with a
              gaussian source, else one per reference particle; shock 200000, >= 100); times =
              generation times of boltzmann (13), equally spaced over the snapshot times up to
              t_max; t_max = the end of boltzmann's reported range (the last snapshot time; must
              be a snapshot time): the model trains on every snapshot, every figure uses t <= t_max;
              ranks = MPI ranks of every kinflow-sample call (ks_aggregation 1, the others [pipeline] ranks; 1 starts
              the driver directly, without mpiexec: at pipeline-1 size start-up is most of its
              wall time); ensemble = models of boltzmann's generator (1): K > 1 trains K models
              of the same route with seeds seed..seed+K-1 and generates their equal-weight
              mixture (each source particle mapped by one member), reporting each member's error
              and the training-to-training SE (bootstrap over members) beside the sampling SE
  [compare]   max_points = points per exact W2 (4096, 2..20000; all particles when fewer);
              bootstrap = resamples for the standard errors (5; 0 = none); density_bins =
              histogram cells per axis for the ks_aggregation peak density (40); floor_runs =
              boltzmann's independent DSMC runs for the floor (1: the reference run alone;
              R > 1: the mean of R runs' mean |m4 - exact|, SE their spread / sqrt(R));
              ks_aggregation's independent floor runs at each tested chi (1..50, default 1;
              R > 1: baselines.floor.w2 is the mean W2 of the test run to each, and m2 and peak
              density get the spread of the R + 1 runs, *_runs_sd, and the acceptance entries
              *_within_3sd_runs and *_vs_runs_mean_in_se beside the bootstrap ones); shock only:
              window = half-width of the compared xi range in upstream mean free paths lambda_1
              (8, 1..1000; rows outside are not used), profile_bins = bins of the n/n1 and T/T1
              profiles in [-window, window] (32, 4..10000), mid_width = width of the mid-shock
              slab |xi| < mid_width/2 of the v_x distribution (0.5, 1e-3..100), replicates =
              batches for the profiles' standard errors (10, 2..1000: DSMC snapshots in time
              order, random batches of the generated rows); the mid-shock W2 is 1D (v_x) at
              max_points per set, the profile errors' SEs are parametric bootstrap draws
  [nfe]       objectives = none | comma list of kinflow-train objectives (ks_aggregation and
              boltzmann): the NFE-accuracy table, each model sampled at every count (fm: Euler
              steps; meanflow and flow maps: jumps; w2map: one evaluation, ks_aggregation only;
              reflow, dsm, tfm are refused: they do not start from the initial snapshot or take a
              count); a model other than the pipeline's own is trained with [train] and its
              [train.OBJECTIVE] keys. counts = network evaluations (1,2,4,8,100); times =
              boltzmann's generation times of the table (4). ks_aggregation reports W2 / floor ±
              SE at the unseen chi and the one-step acceptance (best 1-evaluation model within
              1.2x of fm at the largest count, below w2map); boltzmann mean |m4 - exact| ± SE
Every W2 and moment is reported with its standard error and beside its sampling floor (the same
metric between two independent simulations at the same parameter and point count), in
summary.json (baselines.floor, *_se) and the report.
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
