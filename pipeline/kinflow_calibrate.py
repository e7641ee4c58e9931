#!/usr/bin/env python3
"""kinflow-calibrate: recover a DSMC parameter from a relaxation curve by gradient descent with
adjoint DSMC gradients (issue 17; Caflisch, Silantyev & Yang, J. Comput. Phys. 439, 110404 (2021);
Yang, Silantyev & Caflisch, J. Comput. Phys. 488, 112247 (2023)).

    python3 pipeline/kinflow_calibrate.py inputs/adjoint_calibrate_vhs.ini [--out DIR] [--ranks N]
                                          [--build DIR] [--set section.key=value ...] [--quiet]

The deck holds the model's [run] and [dsmc] sections (passed to kinflow-simulate as they are) and:

* [target]: `value` of the parameter that made the data, `replicas` independent DSMC runs at it
  with seeds no model run uses (drawn from the operating system unless `seed` is set; written to
  summary.json only afterwards). The target curve y_k is their mean T_x at the observation steps and
  its standard error their spread. (The runs are kinflow-simulate's [adjoint] replicas, which run
  many independent DSMC runs in one call; the gradient those calls also compute is not used.) The
  model and the target thus share the particle count and its O(1/N) bias.
* [calibrate]: `parameter` (omega | d_ref | temperature_x | temperature: the dsmc key of the same
  name, and the adjoint.parameters entry), `initial` value, `steps` (observation steps, t_k = steps_k
  run.dt), `replicas` (adjoint replicas per evaluation), `seed` (of the model runs: the same seeds at
  every iteration, so the loss is one smooth sample-average function), `iterations`, `tolerance`, `max_step`, `out`.

At the current value theta every observation step k gets one kinflow-simulate call with
[adjoint] objective = temperature_x: J_k +- se and g_k = dJ_k/dtheta +- se (replicas forward +
adjoint pairs). The loss is chi^2 = sum_k (J_k - y_k)^2 / s_k^2 with s_k^2 = se(y_k)^2 + se(J_k)^2;
the step is gradient descent with the Gauss-Newton step length, theta <- theta - grad/(2F) with
grad = 2 sum_k (J_k - y_k) g_k/s_k^2 and F = sum_k g_k^2/s_k^2 (at most `max_step`, and clipped to the
parameter's range);
it stops when |step| < tolerance/sqrt(F) or after `iterations` evaluations. The estimate is the
last evaluation's theta - grad/(2F), with standard error 1/sqrt(F) (the linearised chi^2: the
target's and the model's noise). Output in OUT: summary.json, loss.png (loss and theta per
iteration), decks/, logs/, runs/, commands.sh.
"""

import argparse
import json
import math
import os
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(SRC / "postprocess"))
from kinflow_pipeline import Deck, PipelineError, fmt, ini_text, mpi_env  # noqa: E402
import kinflow_h5 as kh  # noqa: E402

try:
    import h5py
except ImportError:  # pragma: no cover
    h5py = None

PROG = "kinflow-calibrate"
# parameter -> (dsmc key, lower bound, upper bound). omega < 1: NTC's acceptance is not
# differentiable in omega at the constant kernel omega = 1 (adjoint.parameters).
PARAMETERS = {"omega": ("omega", 0.5, 0.98), "d_ref": ("d_ref", 1e-6, math.inf),
              "temperature_x": ("temperature_x", 1e-6, math.inf), "temperature": ("temperature", 1e-6, math.inf)}
KNOWN = {"calibrate": {"out", "ranks", "parameter", "initial", "steps", "replicas", "seed", "iterations", "tolerance",
                       "max_step"},
         "target": {"value", "replicas", "seed"}}


class Calibration:
    """The driver calls of one calibration: decks, logs and the command list in the run directory."""

    def __init__(self, deck, out, build, ranks, verbose):
        self.deck, self.out, self.build, self.ranks, self.verbose = deck, Path(out), Path(build), ranks, verbose
        self.exe = self.build / "drivers" / "kinflow-simulate"
        if not self.exe.exists():
            raise PipelineError(f"{self.exe} not found: build kinflow first (bash ci/build.sh) or pass --build DIR")
        for d in ("decks", "logs", "runs"):
            (self.out / d).mkdir(parents=True, exist_ok=True)
        self.commands = self.out / "commands.sh"
        self.commands.write_text("#!/bin/sh\n# The driver calls of this calibration, in order.\nset -e\n")
        self.calls = 0
        self.model = {s: dict(deck.sections.get(s, {})) for s in ("run", "dsmc")}
        if self.model["run"].get("engine", "dsmc").strip() != "dsmc":
            raise PipelineError("run.engine must be dsmc")
        self.dt = deck.number("run", "dt", None, float, 0.0)

    def simulate(self, name, steps, seed, value, adjoint=None):
        """kinflow-simulate with dsmc.<parameter> = value, run.steps = steps and an optional [adjoint];
        returns the output file."""
        key = PARAMETERS[self.deck.raw("calibrate", "parameter")][0]
        path = self.out / "runs" / f"{name}.h5"
        sections = {"run": {**self.model["run"], "steps": steps, "seed": seed},
                    "output": {"file": path, "every": steps},
                    "dsmc": {**self.model["dsmc"], key: f"{value:.17g}"}}
        if adjoint:
            sections["adjoint"] = adjoint
        deck = self.out / "decks" / f"{name}.ini"
        deck.write_text(ini_text(sections))
        cmd = [os.environ.get("KINFLOW_MPIEXEC", "mpiexec"), "-q", "-n", str(self.ranks), "--oversubscribe",
               str(self.exe), str(deck), "--quiet"]
        with open(self.commands, "a") as f:
            f.write(shlex.join(cmd) + "\n")
        r = subprocess.run(cmd, capture_output=True, text=True, env=mpi_env())
        (self.out / "logs" / f"{name}.log").write_text(f"$ {shlex.join(cmd)}\n{r.stdout}{r.stderr}")
        self.calls += 1
        if r.returncode != 0:
            tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-2:]
            raise PipelineError(f"run '{name}' failed (exit {r.returncode}): {' | '.join(tail)}")
        return path

    def evaluate(self, name, value, seed, replicas, steps):
        """One kinflow-simulate per observation step with [adjoint] objective = temperature_x: arrays
        J, se(J), dJ/dparameter, its se over the steps."""
        parameter = self.deck.raw("calibrate", "parameter")
        rows = []
        for n in steps:
            path = self.simulate(f"{name}_s{n}", n, seed, value,
                                 {"objective": "temperature_x", "parameters": parameter, "replicas": replicas})
            with h5py.File(path, "r") as f:
                at = f.attrs
                rows.append([float(at["adjoint_objective"]), float(at["adjoint_objective_se"]),
                             float(at[f"adjoint_gradient_{parameter}"]), float(at[f"adjoint_gradient_{parameter}_se"])])
        return tuple(np.array(c) for c in zip(*rows))


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("The deck holds")[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("deck", help="calibration deck (inputs/adjoint_calibrate_*.ini)")
    p.add_argument("--out", help="run directory (default: [calibrate] out)")
    p.add_argument("--ranks", type=int, help="MPI ranks per driver call (default: [calibrate] ranks)")
    p.add_argument("--build", default=os.environ.get("KINFLOW_BUILD_DIR", str(SRC / "build")),
                   help="kinflow build directory (default: build/)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a deck key (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    a = p.parse_args(argv)
    try:
        if h5py is None:
            raise PipelineError("h5py is missing: run with Debian's /usr/bin/python3 (python3-h5py)")
        deck = Deck(a.deck, a.set)
        for section, known in KNOWN.items():
            for key in deck.sections.get(section, {}):
                if key not in known:
                    raise PipelineError(f"{a.deck}: unknown key [{section}] {key} (known: {', '.join(sorted(known))})")
        summary = calibrate(deck, a)
        print(f"{PROG}: {summary['parameter']} = {summary['estimate']:.4f} +- {summary['standard_error']:.4f} "
              f"(true {summary['true_value']:g}, {summary['error_in_se']:+.2f} SE) after {summary['evaluations']} "
              f"evaluations, {summary['forward_adjoint_pairs']} forward+adjoint runs, {summary['driver_calls']} "
              f"driver calls, {summary['wall_s']:.0f} s; {summary['out']}/summary.json, loss.png")
        return 0
    except PipelineError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1


def calibrate(deck, a):
    parameter = deck.raw("calibrate", "parameter")
    if parameter not in PARAMETERS:
        raise PipelineError(f"calibrate.parameter = {parameter}: expected one of {' | '.join(PARAMETERS)}")
    _, lo, hi = PARAMETERS[parameter]
    out = Path(a.out or deck.raw("calibrate", "out"))
    ranks = a.ranks if a.ranks is not None else deck.number("calibrate", "ranks", 1, int, 1, 4096)
    steps = [int(s) for s in deck.numbers("calibrate", "steps", None, 1)]
    if any(s != int(s) for s in deck.numbers("calibrate", "steps", None, 1)) or len(set(steps)) != len(steps):
        raise PipelineError("calibrate.steps: distinct whole numbers of steps")
    theta = deck.number("calibrate", "initial", None, float, lo, hi)
    replicas = deck.number("calibrate", "replicas", 8, int, 2)
    seed = deck.number("calibrate", "seed", 1, int, 0)
    iterations = deck.number("calibrate", "iterations", 10, int, 1)
    tolerance = deck.number("calibrate", "tolerance", 0.25, float, 0.0)
    max_step = deck.number("calibrate", "max_step", math.inf, float, 0.0)
    true_value = deck.number("target", "value", None, float, lo, hi)
    t_replicas = deck.number("target", "replicas", 8, int, 2)
    hidden = deck.raw("target", "seed", "hidden")
    t_seed = random.SystemRandom().randrange(10**6, 2**31 - 10**4) if hidden == "hidden" else \
        deck.number("target", "seed", None, int, 0)
    if abs(t_seed - seed) < max(replicas, t_replicas):
        raise PipelineError("target.seed must differ from calibrate.seed by more than the replica counts")
    t0 = time.perf_counter()
    cal = Calibration(deck, out, a.build, ranks, not a.quiet)
    say = (lambda m: print(f"{PROG}: {m}", flush=True)) if not a.quiet else (lambda m: None)

    # 1. the target curve: T_x at every observation step, mean of t_replicas runs at the true value
    y_mean, y_se, _, _ = cal.evaluate("target", true_value, t_seed, t_replicas, steps)
    say(f"target ({t_replicas} runs): T_x = "
        + ", ".join(f"{m:.4f}+-{s:.4f}" for m, s in zip(y_mean, y_se)) + f" at steps {steps}")

    # 2. gradient descent with adjoint gradients
    history = []
    estimate = se = None
    for it in range(iterations):
        J, Jse, g, gse = cal.evaluate(f"it{it:02d}", theta, seed, replicas, steps)
        s2 = y_se ** 2 + Jse ** 2
        loss = float(np.sum((J - y_mean) ** 2 / s2))
        F = float(np.sum(g ** 2 / s2))
        grad = float(np.sum(2 * (J - y_mean) * g / s2))
        step = grad / (2 * F)
        step = max(-max_step, min(max_step, step))  # trust region: the gradients are noisy, the model nonlinear
        estimate, se = min(max(theta - step, lo), hi), 1 / math.sqrt(F)
        history.append({"iteration": it, "theta": theta, "loss": loss, "gradient": grad, "step": step,
                        "J": J.tolist(), "J_se": Jse.tolist(), "dJ": g.tolist(), "dJ_se": gse.tolist(),
                        "standard_error": se})
        say(f"iteration {it}: {parameter} = {theta:.5f}, chi2 = {loss:.3f} ({len(steps)} points), "
            f"dchi2/d{parameter} = {grad:.4g}, step {-step:+.5f} (SE {se:.5f})")
        if abs(step) < tolerance * se:
            break
        theta = estimate

    wall = time.perf_counter() - t0
    evaluations = len(history)
    summary = {"parameter": parameter, "true_value": true_value, "initial": history[0]["theta"],
               "estimate": estimate, "standard_error": se, "error_in_se": (estimate - true_value) / se,
               "evaluations": evaluations, "forward_adjoint_pairs": evaluations * len(steps) * replicas,
               "target_runs": len(steps) * t_replicas,
               "driver_calls": cal.calls, "target": {"steps": steps, "time": [s * cal.dt for s in steps],
                                                     "temperature_x": y_mean.tolist(), "se": y_se.tolist(),
                                                     "replicas": t_replicas, "seed": t_seed},
               "replicas": replicas, "ranks": ranks, "wall_s": fmt(wall), "out": str(out), "history": history}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(out / "loss.png", history, parameter, true_value, estimate, se)
    return summary


def plot(path, history, parameter, true_value, estimate, se):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    it = [h["iteration"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.semilogy(it, [max(h["loss"], 1e-12) for h in history], "o-")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel(r"$\chi^2$ (loss)")
    ax1.set_title("loss")
    ax2.plot(it, [h["theta"] for h in history], "o-", label="iterate")
    ax2.axhline(true_value, color="k", ls="--", lw=1, label="true")
    ax2.axhspan(estimate - se, estimate + se, color="C1", alpha=0.3, label=r"estimate $\pm$ SE")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel(parameter)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
