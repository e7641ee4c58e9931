#!/usr/bin/env python3
"""Plot the cell fields of a spatial DSMC run (dsmc.space = grid): profiles along x of the
number density, the x velocity, the temperature (and T_x) and the x heat flux, averaged over
y and z, for every /fields/NNNNNN group (or the last one with --last), with the exact curves
where the deck is one of the exact collisionless problems (VERIFICATION.md, "Boltzmann,
spatial"):

* init = riemann, collisions = false, specular or periodic x faces: the collisionless Riemann
  problem n(x, t) = (n_L/2) erfc(x/(c_L t)) + (n_R/2) erfc(-x/(c_R t)) with the mirror images of
  the walls (period 2L; periodic: period L);
* diffuse x walls at T1, T2 without collisions: T = sqrt(T1 T2).

Usage: plot_dsmc_fields.py FILE.h5 [-o OUT.png] [--last]
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import kinflow_h5 as kh  # noqa: E402

PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "plot_dsmc_fields.py"
K_SI = 1.380649e-23


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description="Plot x profiles of the cell fields of a spatial DSMC run.")
    p.add_argument("file", help="kinflow HDF5 output of run.engine = dsmc with dsmc.space = grid")
    p.add_argument("-o", "--output", help="PNG path (default: FILE_fields.png)")
    p.add_argument("--last", action="store_true", help="only the last output")
    return p


def erf(x):
    return np.vectorize(math.erf)(x)


def riemann_density(x, t, x0, lo, hi, nL, nR, cL, cR, walls):
    """Exact collisionless density (per unit n) for the left slab (lo, x0) and right slab (x0, hi),
    with mirror images for specular walls (period 2L) or periodic images (period L)."""
    L = hi - lo
    out = np.zeros_like(x)
    if t <= 0:
        return np.where(x < x0, nL, nR)

    def slab(a, b, n, c):
        return 0.5 * n * (erf((x - a) / (c * t)) - erf((x - b) / (c * t))) if c > 0 else np.where((x > a) & (x < b), n, 0.0)

    for k in range(-3, 4):
        if walls == "specular":
            shift = 2 * L * k
            for a, b, n, c in ((lo, x0, nL, cL), (x0, hi, nR, cR)):
                out += slab(a + shift, b + shift, n, c)
                out += slab(2 * lo - b + shift, 2 * lo - a + shift, n, c)  # mirror about lo
        else:
            shift = L * k
            out += slab(lo + shift, x0 + shift, nL, cL) + slab(x0 + shift, hi + shift, nR, cR)
    return out


def main(argv=None):
    args = build_parser().parse_args(argv)
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with h5py.File(args.file, "r") as f:
        if "fields" not in f or "grid" not in f:
            print(f"{PROG}: {args.file} has no /fields and /grid (not a dsmc.space = grid run)", file=sys.stderr)
            return 2
        deck = kh.load_deck(f)
        x = np.asarray(f["grid/x"])
        lo, hi = np.asarray(f["grid/lo"]), np.asarray(f["grid/hi"])
        names = sorted(f["fields"].keys())
        if args.last:
            names = names[-1:]
        groups = []
        for name in names:
            g = f["fields"][name]
            groups.append(
                dict(
                    t=float(g.attrs["time"]),
                    samples=int(g.attrs["samples"]),
                    n=np.asarray(g["number_density"]).mean(axis=(0, 1)),
                    u=np.asarray(g["velocity"])[..., 0].mean(axis=(0, 1)),
                    T=np.asarray(g["temperature"]).mean(axis=(0, 1)),
                    Tx=np.asarray(g["temperature_x"]).mean(axis=(0, 1)),
                    q=np.asarray(g["heat_flux"])[..., 0].mean(axis=(0, 1)),
                )
            )
    get = lambda key, default=None: kh.deck_get(deck, "dsmc", key, default)  # noqa: E731
    boundary = [w.strip() for w in str(get("boundary", "periodic")).split(",")]
    if len(boundary) == 1:
        boundary *= 6
    collisions = str(get("collisions", "true")) == "true"
    kB = K_SI if str(get("units", "normalized")) == "si" else 1.0
    m = float(str(get("mass", "1")).split(",")[0])

    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    cmap = plt.get_cmap("viridis")
    for k, g in enumerate(groups):
        col = cmap(k / max(1, len(groups) - 1))
        lab = f"t = {g['t']:.3g}" + (f" (avg {g['samples']})" if g["samples"] > 1 else "")
        ax[0, 0].plot(x, g["n"], ".", color=col, label=lab)
        ax[0, 1].plot(x, g["u"], "-", color=col)
        ax[1, 0].plot(x, g["T"], "-", color=col)
        ax[1, 0].plot(x, g["Tx"], ":", color=col)
        ax[1, 1].plot(x, g["q"], "-", color=col)
        if str(get("init", "uniform")) == "riemann" and not collisions and boundary[0] in ("specular", "periodic"):
            nL = float(get("number_density", 1))
            nR = float(get("density_right", 0))
            TL = float(str(get("temperature", "1")).split(",")[0])
            TR = float(get("temperature_right", "") or TL)
            xx = np.linspace(lo[0], hi[0], 400)
            ex = riemann_density(xx, g["t"], float(get("riemann_x0", 0.5)), lo[0], hi[0], nL, nR,
                                 math.sqrt(2 * kB * TL / m), math.sqrt(2 * kB * TR / m), boundary[0])
            ax[0, 0].plot(xx, ex, "-", color=col, lw=0.8)
    if boundary[0] == "diffuse" and boundary[1] == "diffuse" and not collisions:
        Tw = [float(v) for v in str(get("wall_temperature", "1")).split(",")]
        if len(Tw) == 1:
            Tw *= 6
        ax[1, 0].axhline(math.sqrt(Tw[0] * Tw[1]), color="k", ls="--", label="sqrt(T1 T2)")
        ax[1, 0].legend()
    ax[0, 0].set_ylabel("number density")
    ax[0, 1].set_ylabel("velocity x")
    ax[1, 0].set_ylabel("temperature (solid), T_x (dotted)")
    ax[1, 1].set_ylabel("heat flux x")
    for a in ax.flat:
        a.set_xlabel("x")
    ax[0, 0].legend(fontsize=7)
    fig.suptitle(os.path.basename(args.file) + " — lines in the density panel: exact collisionless solution")
    fig.tight_layout()
    out = args.output or kh.default_output(args.file, "_fields.png")
    fig.savefig(out, dpi=110)
    print(f"{PROG}: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
