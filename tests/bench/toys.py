"""Helpers shared by the learning benchmarks (meanflow_w2.py, dsm_fp_gap.py, nfe_table.py).

The true laws of kinflow-train's builtin 2D data sets (the same distributions as
src/learn/dataset.cpp's generate_builtin, drawn here with numpy: independent draws of the law,
not the training rows), point files in the snapshot schema, and kinflow-compare's exact W2.
"""
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


def mpi(ranks):
    return ["mpiexec", "-q", "-n", str(ranks), "--oversubscribe"]


def train_time(text):
    """(steps, seconds) of kinflow-train's summary line, or None."""
    m = re.search(r"steps (\d+) -> (\d+) in ([0-9.e+]+) s", text)
    return (int(m.group(2)) - int(m.group(1)), float(m.group(3))) if m else None


def eight_gaussians(n, seed):
    """The law of builtin:eight_gaussians: centres 4 (cos k pi/4, sin k pi/4), k uniform in 0..7, std 0.4."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 8, n) * np.pi / 4
    return np.stack([4 * np.cos(a), 4 * np.sin(a)], axis=1) + 0.4 * rng.normal(size=(n, 2))


def checkerboard(n, seed):
    """The law of builtin:checkerboard: uniform on the 8 squares of side 2 of [-4, 4]^2 with even parity."""
    rng = np.random.default_rng(seed)
    x1 = 4 * rng.random(n) - 2
    x2 = rng.random(n) - 2 * np.floor(2 * rng.random(n)) + np.mod(np.floor(x1) + 4, 2)
    return 2 * np.stack([x1, x2], axis=1)


def ring_ellipse(n, seed):
    """The law of builtin:ring_ellipse: half on the ring of radius 4 (radial std 0.2), half uniform in
    the filled ellipse (x / 2.5)^2 + y^2 <= 1."""
    rng = np.random.default_rng(seed)
    a = 2 * np.pi * rng.random(n)
    ring = rng.random(n) < 0.5
    r = np.where(ring, 4 + 0.2 * rng.normal(size=n), np.sqrt(rng.random(n)))
    return np.stack([np.where(ring, 1.0, 2.5) * r * np.cos(a), r * np.sin(a)], axis=1)


TOYS = {"eight_gaussians": eight_gaussians, "checkerboard": checkerboard, "ring_ellipse": ring_ellipse}


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
    """Exact W2 between the point files a and b (kinflow-compare, all points up to `points`)."""
    j = Path(out) / "compare.json"
    run([Path(build) / "drivers" / "kinflow-compare", a, b, "--max-points", points, "--no-sinkhorn", "--json", j])
    return json.loads(j.read_text())["w2_exact"]


def floors(build, law, n, out, truth, repeats=2, seed=2):
    """W2 between `repeats` independent draws of the law and the truth file (same point count)."""
    values = []
    for k in range(repeats):
        path = Path(out) / f"truth_floor{k}.h5"
        write_points(path, law(n, seed + k))
        values.append(w2(build, path, truth, n, out))
    return values
