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
import re
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toys import SRC, eight_gaussians, run, w2, write_points  # noqa: E402


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
