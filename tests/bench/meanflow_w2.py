#!/usr/bin/env python3
"""MeanFlow against flow matching on the eight-Gaussians toy: W2 to the true law by NFE.

Trains inputs/train_fm_gaussian_mixture.ini and inputs/train_meanflow_gaussian_mixture.ini
(optionally shortened), samples fm at NFE 1, 4, 100 (Euler) and meanflow at NFE 1, 2, 4
(average-velocity jumps), and compares each sample set with a fresh draw of the true law by
build/drivers/kinflow-compare (exact W2 on all points). The floor is the W2 between two
independent draws of the true law with the same point count (two pairs are printed to show its
spread). Prints a markdown table and the training times (kinflow-train's own report).

Usage: /usr/bin/python3 tests/bench/meanflow_w2.py [--build build] [--out out/meanflow_w2]
       [--ranks 2] [--points 4000] [--steps N (default: the decks')]
"""
import argparse
import json
import os
import re
import subprocess
from pathlib import Path

import h5py
import numpy as np

SRC = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", KOKKOS_DISABLE_WARNINGS="1", OMP_NUM_THREADS="1")


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def eight_gaussians(n, seed):
    """The law of builtin:eight_gaussians: centres 4 (cos k pi/4, sin k pi/4), k uniform in 0..7, std 0.4."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 8, n) * np.pi / 4
    return np.stack([4 * np.cos(a), 4 * np.sin(a)], axis=1) + 0.4 * rng.normal(size=(n, 2))


def write_points(path, x):
    with h5py.File(path, "w") as f:
        f.attrs["producer"] = "reference"
        f.attrs["dim"] = np.int32(2)
        f.attrs["deck"] = ""
        g = f.create_group("snapshots/000000")
        g.attrs["time"] = 0.0
        g.attrs["step"] = np.int64(0)
        g["position"] = x
        g["id"] = np.arange(len(x), dtype=np.int64)


def w2(build, a, b, points, out):
    j = out / "compare.json"
    run([build / "drivers" / "kinflow-compare", a, b, "--max-points", points, "--no-sinkhorn", "--json", j])
    return json.loads(j.read_text())["w2_exact"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=str(SRC / "build"))
    p.add_argument("--out", default=str(SRC / "out" / "meanflow_w2"))
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--points", type=int, default=4000)
    p.add_argument("--steps", type=int)
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
    rows, times = [], {}
    for objective, nfes in (("fm", (1, 4, 100)), ("meanflow", (1, 2, 4))):
        model = out / f"{objective}.pt"
        cmd = mpi + [build / "drivers" / "kinflow-train", SRC / "inputs" / f"train_{objective}_gaussian_mixture.ini",
                     f"--train.model_file={model}", "--train.checkpoint_every=0"]
        if args.steps:
            cmd.append(f"--train.steps={args.steps}")
        text = run(cmd)
        m = re.search(r"steps 0 -> (\d+) in ([0-9.e+]+) s", text)
        times[objective] = (int(m.group(1)), float(m.group(2))) if m else None
        for nfe in nfes:
            samples = out / f"{objective}_nfe{nfe}.h5"
            run(mpi + [build / "drivers" / "kinflow-sample", SRC / "inputs" / f"sample_{objective}_gaussian_mixture.ini",
                       f"--sample.model_file={model}", "--sample.method=euler", f"--sample.nfe={nfe}",
                       f"--sample.count={n}", f"--output.file={samples}", "--quiet"])
            with h5py.File(samples, "r") as f:
                assert int(f.attrs["nfe"]) == nfe
            rows.append((objective, nfe, w2(build, samples, truth, n, out)))
    print(f"| model | NFE | W2 to the true law ({n} points) | / floor |")
    print("|---|---|---|---|")
    floor = float(np.mean(floors))
    for objective, nfe, w in rows:
        print(f"| {objective} | {nfe} | {w:.4f} | {w / floor:.2f} |")
    print(f"| floor: two draws of the true law | - | {floors[0]:.4f}, {floors[1]:.4f} | 1 |")
    for objective, t in times.items():
        if t:
            print(f"training {objective}: {t[0]} steps in {t[1]:.1f} s ({1e3 * t[1] / t[0]:.2f} ms/step)")


if __name__ == "__main__":
    main()
