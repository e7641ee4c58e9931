#!/usr/bin/env python3
"""The ODE-SDE gap of score models on the eight-Gaussians toy, with and without the Fokker-Planck residual.

Trains dsm on builtin:eight_gaussians with train.score_model = potential at
train.fp_residual_weight = w for each --weights value (and, for reference, the default vector
model), samples each model with the probability-flow ODE (RK4) and the reverse SDE
(Euler-Maruyama), and reports by build/drivers/kinflow-compare (exact W2 on all points):
W2(ODE, data), W2(SDE, data), and the ODE-SDE gap W2(ODE, SDE). The floor is the W2 between two
independent draws of the true law with the same point count (two pairs, to show its spread); the
ODE and SDE samples are independent draws too, so the gap has the same floor. Also prints each
model's Jacobian asymmetry (kinflow-compare --score-curl) and the training cost per step.

Usage: /usr/bin/python3 tests/bench/dsm_fp_gap.py [--build build] [--out out/dsm_fp_gap]
       [--ranks 1] [--points 2000] [--steps 3000] [--weights 0,0.1,1]
"""
import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toys import SRC, eight_gaussians, run, w2, write_points  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=str(SRC / "build"))
    p.add_argument("--out", default=str(SRC / "out" / "dsm_fp_gap"))
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--points", type=int, default=2000)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=512, help="global batch")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--weights", default="0,0.1,1")
    p.add_argument("--ode-nfe", type=int, default=200, help="RK4 evaluations")
    p.add_argument("--sde-nfe", type=int, default=500, help="Euler-Maruyama steps")
    args = p.parse_args()
    build, out = Path(args.build), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mpi = ["mpiexec", "-q", "-n", str(args.ranks), "--oversubscribe"]
    n = args.points
    truth = out / "truth.h5"
    write_points(truth, eight_gaussians(n, 1))
    floors = []
    for k in (2, 3):
        write_points(out / f"truth{k}.h5", eight_gaussians(n, k))
        floors.append(w2(build, out / f"truth{k}.h5", truth, n, out))
    floor = float(np.mean(floors))
    models = [("vector", None)] + [("potential", float(w)) for w in args.weights.split(",")]
    rows = []
    for score_model, w in models:
        name = "vector" if w is None else f"potential_w{w:g}"
        model = out / f"{name}.pt"
        cmd = mpi + [build / "drivers" / "kinflow-train", SRC / "inputs" / "train_dsm_gaussian_mixture.ini",
                     f"--train.model_file={model}", "--train.checkpoint_every=0", f"--train.steps={args.steps}",
                     f"--train.batch_size={args.batch // args.ranks}", f"--train.hidden={args.hidden}",
                     f"--train.score_model={score_model}", f"--train.fp_residual_weight={w or 0}"]
        text = run(cmd)
        m = re.search(r"steps 0 -> (\d+) in ([0-9.e+]+) s", text)
        ms = 1e3 * float(m.group(2)) / int(m.group(1)) if m else float("nan")
        files = {}
        for method, nfe, seed in (("rk4", args.ode_nfe, 21), ("euler-maruyama", args.sde_nfe, 22)):
            files[method] = out / f"{name}_{method}.h5"
            run(mpi + [build / "drivers" / "kinflow-sample", SRC / "inputs" / "sample_dsm_gaussian_mixture.ini",
                       f"--sample.model_file={model}", f"--sample.method={method}", f"--sample.nfe={nfe}",
                       f"--sample.count={n}", f"--output.file={files[method]}", f"--run.seed={seed}", "--quiet"])
        ode = w2(build, files["rk4"], truth, n, out)
        sde = w2(build, files["euler-maruyama"], truth, n, out)
        gap = w2(build, files["rk4"], files["euler-maruyama"], n, out)
        j = out / "curl.json"
        run([build / "drivers" / "kinflow-compare", "--score-curl", model, truth, "--max-points", 500, "--json", j])
        curl = json.loads(j.read_text())["curl_mean"]
        rows.append((name, ode, sde, gap, curl, ms))
        print(f"{name}: ODE {ode:.4f} SDE {sde:.4f} gap {gap:.4f} curl {curl:.3g} ({ms:.1f} ms/step)", flush=True)
    print()
    print(f"| model | W2(ODE, data) | W2(SDE, data) | ODE-SDE gap W2(ODE, SDE) | curl | ms/step |")
    print("|---|---|---|---|---|---|")
    for name, ode, sde, gap, curl, ms in rows:
        print(f"| {name} | {ode:.4f} ({ode / floor:.2f}) | {sde:.4f} ({sde / floor:.2f}) | {gap:.4f} ({gap / floor:.2f}) "
              f"| {curl:.2g} | {ms:.1f} |")
    print(f"| floor: two draws of the true law | {floors[0]:.4f}, {floors[1]:.4f} | | | | |")
    print(f"({n} points each; in parentheses: / mean floor {floor:.4f})")


if __name__ == "__main__":
    main()
