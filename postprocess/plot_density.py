#!/usr/bin/env python3
"""Plot particle position densities from kinflow HDF5 snapshots.

* dim 1: density-normalised histograms, one curve per chosen snapshot;
* dim 2: a 2-D density (hist2d) panel per chosen snapshot, plus the 1-D
  marginal of x;
* dim >= 3: the x-y projection (hist2d) per chosen snapshot, plus the 1-D
  marginals of x.

For a double-well Langevin deck (potential = double_well,
V = stiffness (x^2 - 1)^2 per component) the normalised Gibbs density
exp(-V/temperature)/Z is overlaid on the 1-D (x) marginal of the last chosen
snapshot.

Usage: plot_density.py FILE.h5 [-o OUT.png] [--snapshots i,j,k]

Snapshot numbers refer to the NNNNNN index of /snapshots/NNNNNN; negative
numbers count from the end (-1 = last).  Default: first, middle and last.
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import kinflow_h5 as kh  # noqa: E402

PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "plot_density.py"


def build_parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Plot particle position densities of kinflow snapshots.")
    p.add_argument("file", help="kinflow HDF5 output file")
    p.add_argument("-o", "--output", default=None,
                   help="output PNG (default: FILE with suffix replaced by _density.png)")
    p.add_argument("--snapshots", default=None, metavar="i,j,k",
                   help="comma list of snapshot indices (the NNNNNN of "
                        "/snapshots/NNNNNN; negative counts from the end). "
                        "Default: first, middle and last")
    return p


def load(path, selection):
    with kh.open_kinflow(path) as f:
        attrs = kh.load_root_attrs(f)
        deck = kh.load_deck(f)
        snaps = kh.list_snapshots(f)
        if not snaps:
            raise kh.KinflowError(f"'{path}' has no /snapshots/NNNNNN groups")
        dim = kh.get_dim(f, deck)
        if dim < 1:
            raise kh.KinflowError(f"'{path}': invalid dim {dim}")
        chosen = kh.choose_snapshots(snaps, selection)
        data = []
        for s in chosen:
            pos = kh.read_positions(f, s, dim)
            if pos.shape[1] < min(dim, 2):
                raise kh.KinflowError(
                    f"{s['path']}/position has {pos.shape[1]} columns, dim is {dim}")
            data.append((s, pos))
    return attrs, deck, dim, data


def gibbs_overlay(deck, dim):
    """(stiffness, temperature) of component 0 for a double-well deck, else None."""
    if not deck or not kh.is_double_well_deck(deck):
        return None
    try:
        k = kh.deck_vector(deck, "langevin", "stiffness", dim, default="1")[0]
        T = kh.deck_vector(deck, "langevin", "temperature", dim, default="1")[0]
    except ValueError as exc:
        kh.cli_warn(PROG, f"double-well deck but parameters unusable ({exc})")
        return None
    if not (T > 0 and k > 0):
        kh.cli_warn(PROG, "double-well deck with non-positive stiffness/temperature: "
                          "no Gibbs overlay")
        return None
    return float(k), float(T)


def _finite_rows(pos, cols):
    sub = pos[:, cols]
    return sub[np.all(np.isfinite(sub), axis=1)]


def _range(arrays, pad=0.05):
    vals = [a for a in arrays if a.size]
    if not vals:
        return (-1.0, 1.0)
    lo = min(float(a.min()) for a in vals)
    hi = max(float(a.max()) for a in vals)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    w = hi - lo
    return (lo - pad * w, hi + pad * w)


def _nbins(n, cap):
    return int(min(cap, max(10, round(math.sqrt(max(n, 1))))))


def _label(s, n):
    return f"#{s['index']}  t={s['time']:.4g}  (step {s['step']}, N={n})"


def plot_marginal(ax, data, gibbs, xlab="x"):
    """Density histograms of component 0 for each snapshot (+ Gibbs on last)."""
    xs = [_finite_rows(pos, [0])[:, 0] for _, pos in data]
    rng = _range(xs)
    if gibbs is not None:
        # make sure both wells are visible
        rng = (min(rng[0], -1.6), max(rng[1], 1.6))
    for i, ((s, _), x) in enumerate(zip(data, xs)):
        if x.size == 0:
            continue
        ax.hist(x, bins=_nbins(x.size, 100), range=rng, density=True,
                histtype="step", lw=1.5, color=f"C{i % 10}", label=_label(s, x.size))
    if gibbs is not None:
        k, T = gibbs
        grid = np.linspace(rng[0], rng[1], 600)
        rho = kh.gibbs_double_well(grid, k, T)
        if rho is not None:
            last = data[-1][0]
            ax.plot(grid, rho, "k--", lw=1.5,
                    label=f"Gibbs exp(-V/T)/Z (k={k:g}, T={T:g}) vs #{last['index']}")
    ax.set_xlabel(xlab)
    ax.set_ylabel("density")
    ax.grid(True, alpha=0.3)
    lo, hi = ax.get_ylim()
    ax.set_ylim(0.0, hi * (1.0 + 0.08 * (len(data) + (gibbs is not None))))  # legend room
    ax.legend(fontsize=7, loc="upper right")


def make_plot(path, out_path, attrs, deck, dim, data):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gibbs = gibbs_overlay(deck, dim)
    producer = attrs.get("producer", "?")
    header = f"{os.path.basename(path)}  (producer={producer}, dim={dim})"

    if dim == 1:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        plot_marginal(ax, data, gibbs)
        ax.set_title("position density", fontsize=10)
    else:
        n_panels = len(data) + 1
        ncols = min(4, n_panels)
        nrows = int(math.ceil(n_panels / ncols))
        fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                                 figsize=(4.2 * ncols, 3.9 * nrows + 0.6))
        flat = axes.reshape(-1)
        xy = [_finite_rows(pos, [0, 1]) for _, pos in data]
        xr = _range([a[:, 0] for a in xy])
        yr = _range([a[:, 1] for a in xy])
        what = "x-y density" if dim == 2 else "x-y projection"
        for ax, (s, _), a in zip(flat, data, xy):
            if a.shape[0] == 0:
                ax.text(0.5, 0.5, "no finite positions", ha="center",
                        transform=ax.transAxes)
            else:
                nb = _nbins(a.shape[0], 80)
                _, _, _, im = ax.hist2d(a[:, 0], a[:, 1], bins=nb, range=[xr, yr],
                                        density=True, cmap="viridis")
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            ax.set_title(f"{what}\n{_label(s, a.shape[0])}", fontsize=8)
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            ax.set_aspect("auto")
        plot_marginal(flat[len(data)], data, gibbs, xlab="x")
        flat[len(data)].set_title("marginal density of x", fontsize=9)
        for ax in flat[n_panels:]:
            ax.set_visible(False)
    fig.suptitle(header, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = build_parser().parse_args(argv)
    out_path = args.output or kh.default_output(args.file, "_density.png")
    try:
        selection = kh.parse_snapshot_selection(args.snapshots) if args.snapshots is not None else None
        attrs, deck, dim, data = load(args.file, selection)
    except kh.KinflowError as exc:
        kh.cli_error(PROG, exc)
    except Exception as exc:  # corrupt datasets etc.: still one clean line
        kh.cli_error(PROG, f"cannot read '{args.file}': {type(exc).__name__}: {exc}")
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        kh.cli_error(PROG, f"output directory '{out_dir}' does not exist")
    make_plot(args.file, out_path, attrs, deck, dim, data)
    print(out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
