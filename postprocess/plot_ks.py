#!/usr/bin/env python3
"""Plot a Keller-Segel (ks engine) run: density snapshots and the second moment.

* Density panels, one per chosen snapshot: dim 2, the particle density on a
  grid (log colour scale: an aggregate is orders of magnitude denser than the
  rest); dim 3, its projections on the x-y, x-z and y-z planes (one row per
  snapshot).  The grid spans the central 99% of the particles of that
  snapshot; the title gives the time, the step and the densest-blob mass
  fraction ``core_fraction`` when the file has it.
* m2 = (M/N) sum |X_i|^2 against time (``/diagnostics/second_moment``, or
  computed from the snapshots when absent), with the virial lines:
  - the discrete-virial prediction integrated in time,
    m2(0) + int virial_rate dt (trapezoid over the snapshots), when the file has
    ``virial_rate``;
  - in 2D without flow, the exact virial law
    m2(0) + 4 mu M (1 - chi M / (8 pi mu)) t (VERIFICATION.md), and for
    supercritical Gaussian data the blow-up bound 4 pi sigma^2 / (chi M - 8 pi mu);
  - a marker at the end of a run stopped by the collapse criterion
    (core_fraction >= ks.blowup_fraction).

Usage: plot_ks.py FILE.h5 [-o OUT.png] [--snapshots i,j,k]

Snapshot numbers are the NNNNNN of /snapshots/NNNNNN; negative numbers count
from the end (-1 = last).  Default: first, middle and last.
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import kinflow_h5 as kh  # noqa: E402

PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "plot_ks.py"


def build_parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Plot density snapshots and the second moment (with the virial "
                    "lines) of a kinflow Keller-Segel run.")
    p.add_argument("file", help="kinflow HDF5 output file (producer ks)")
    p.add_argument("-o", "--output", default=None,
                   help="output PNG (default: FILE with suffix replaced by _ks.png)")
    p.add_argument("--snapshots", default=None, metavar="i,j,k",
                   help="comma list of snapshot indices (negative counts from the end). "
                        "Default: first, middle and last")
    return p


def _float(deck, key, default):
    raw = kh.deck_get(deck, "ks", key)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        kh.cli_warn(PROG, f"[ks] {key} = '{raw}' is not a number; using {default}")
        return default


def ks_params(deck):
    """The [ks] parameters the plot needs (defaults as in kinflow)."""
    ks = deck.get("ks", {})
    return {
        "mass": _float(deck, "mass", 1.0),
        "chi": _float(deck, "chi", 1.0),
        "mu": _float(deck, "mu", 1.0),
        "delta": _float(deck, "delta", 0.05),
        "init_std": _float(deck, "init_std", 1.0),
        "blowup_fraction": _float(deck, "blowup_fraction", 0.0),
        "init": ks.get("init", "gaussian").lower(),
        "flow": ks.get("flow", "none").lower(),
    }


def load(path, selection):
    """Everything the plot needs; raises KinflowError on unusable input."""
    with kh.open_kinflow(path) as f:
        attrs = kh.load_root_attrs(f)
        deck = kh.load_deck(f)
        snaps = kh.list_snapshots(f)
        if not snaps:
            raise kh.KinflowError(f"'{path}' has no /snapshots/NNNNNN groups")
        dim = kh.get_dim(f, deck)
        if dim not in (2, 3):
            raise kh.KinflowError(f"'{path}': dim is {dim}, plot_ks.py plots dim 2 or 3")
        params = ks_params(deck)
        diags = kh.read_diagnostics(f)
        chosen = kh.choose_snapshots(snaps, selection)
        data = []
        for s in chosen:
            pos = kh.read_positions(f, s, dim)
            if pos.shape[1] != dim:
                raise kh.KinflowError(f"{s['path']}/position has {pos.shape[1]} columns, dim is {dim}")
            data.append((s, pos))
        if "second_moment" in diags and "time" in diags and len(diags["time"]) == len(diags["second_moment"]):
            t, m2 = diags["time"], diags["second_moment"]
        else:  # compute m2 = (M/N) sum |X|^2 from every snapshot
            t, m2 = [], []
            for s in snaps:
                pos = kh.read_positions(f, s, dim)
                t.append(s["time"])
                m2.append(params["mass"] / max(len(pos), 1) * float(np.sum(pos * pos)))
            t, m2 = np.asarray(t), np.asarray(m2)
    return attrs, deck, dim, params, diags, data, t, m2


def central_range(a, q=0.5, pad=0.08):
    """(lo, hi) holding the central 100 - 2q percent of a, padded."""
    if a.size == 0:
        return (-1.0, 1.0)
    lo, hi = np.percentile(a, [q, 100.0 - q])
    if not hi > lo:
        lo, hi = float(a.min()) - 0.5, float(a.max()) + 0.5
    w = hi - lo
    return (lo - pad * w, hi + pad * w)


def density_panel(fig, ax, pos, cols, mass_per_particle, labels):
    """Particle density on a grid of the plane `cols` (log colour scale)."""
    from matplotlib.colors import LogNorm

    sub = pos[:, cols]
    sub = sub[np.all(np.isfinite(sub), axis=1)]
    if sub.shape[0] == 0:
        ax.text(0.5, 0.5, "no finite positions", ha="center", transform=ax.transAxes)
        return
    xr, yr = central_range(sub[:, 0]), central_range(sub[:, 1])
    nb = int(min(120, max(16, round(math.sqrt(sub.shape[0])))))
    h, xe, ye = np.histogram2d(sub[:, 0], sub[:, 1], bins=nb, range=[xr, yr])
    area = (xe[1] - xe[0]) * (ye[1] - ye[0])
    rho = np.ma.masked_equal(h.T * mass_per_particle / area, 0.0)
    if rho.count() == 0:
        ax.text(0.5, 0.5, "no particles in range", ha="center", transform=ax.transAxes)
        return
    vmin, vmax = float(rho.min()), float(rho.max())
    norm = LogNorm(vmin=vmin, vmax=vmax if vmax > vmin else vmin * 10)
    im = ax.pcolormesh(xe, ye, rho, norm=norm, cmap="viridis", shading="flat")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="density" if len(cols) == 2 else None)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])


def _value_at(diags, name, time):
    """diags[name] at the snapshot whose time is `time` (None if absent)."""
    if name not in diags or "time" not in diags or len(diags["time"]) == 0:
        return None
    i = int(np.argmin(np.abs(diags["time"] - time)))
    if i < len(diags[name]):
        return float(diags[name][i])
    return None


def m2_panel(ax, dim, params, diags, t, m2):
    ax.plot(t, m2, "o-", ms=3, lw=1.2, color="C0", label="m2 = (M/N) sum |X|^2")
    if "virial_rate" in diags and len(diags["virial_rate"]) == len(t) and len(t) > 1:
        rate = diags["virial_rate"]
        integ = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(t))])
        ax.plot(t, m2[0] + integ, "--", color="C1", lw=1.5,
                label="discrete virial: m2(0) + int virial_rate dt")
    M, chi, mu = params["mass"], params["chi"], params["mu"]
    tmax = float(t[-1]) if len(t) else 1.0
    if dim == 2 and params["flow"] == "none":
        slope = 4.0 * mu * M * (1.0 - chi * M / (8.0 * math.pi * mu)) if mu > 0 else -chi * M * M / (2 * math.pi)
        tt = np.linspace(0.0, tmax if tmax > 0 else 1.0, 100)
        line = m2[0] + slope * tt
        keep = line >= 0
        ax.plot(tt[keep], line[keep], "k:", lw=1.5,
                label=f"virial law m2(0) + 4 mu M (1 - chi M/(8 pi mu)) t, slope {slope:.4g}")
        s2 = params["init_std"] ** 2
        if params["init"] == "gaussian" and chi * M > 8 * math.pi * mu:
            tb = 4.0 * math.pi * s2 / (chi * M - 8.0 * math.pi * mu)
            if tb <= 1.5 * max(tmax, 1e-300):
                ax.axvline(tb, color="C3", ls="-.", lw=1.2, label=f"Gaussian blow-up bound t = {tb:.4g}")
    frac = params["blowup_fraction"]
    last_core = _value_at(diags, "core_fraction", tmax)
    if frac > 0 and last_core is not None and last_core >= frac:
        ax.axvline(tmax, color="C2", lw=1.2, label=f"collapse to the blob scale, t = {tmax:.4g}")
    ax.set_xlabel("time")
    ax.set_ylabel("second moment m2")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def make_plot(path, out_path, attrs, dim, params, diags, data, t, m2):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_snap = len(data)
    header = (f"{os.path.basename(path)}  (producer={attrs.get('producer', '?')}, dim={dim}, "
              f"M={params['mass']:g}, chi={params['chi']:g}, mu={params['mu']:g}, "
              f"delta={params['delta']:g}, flow={params['flow']})")
    if dim == 2:
        ncols = n_snap
        nrows = 2
        fig = plt.figure(figsize=(max(4.4 * ncols, 9.0), 8.6))
        gs = fig.add_gridspec(nrows, ncols)
        for c, (s, pos) in enumerate(data):
            ax = fig.add_subplot(gs[0, c])
            density_panel(fig, ax, pos, [0, 1], params["mass"] / max(len(pos), 1), ("x", "y"))
            ax.set_title(_title(s, pos, diags), fontsize=8)
        ax = fig.add_subplot(gs[1, :])
    else:
        planes = [([0, 1], ("x", "y")), ([0, 2], ("x", "z")), ([1, 2], ("y", "z"))]
        fig = plt.figure(figsize=(13.5, 3.6 * n_snap + 4.2))
        gs = fig.add_gridspec(n_snap + 1, 3, height_ratios=[1.0] * n_snap + [1.15])
        for r, (s, pos) in enumerate(data):
            for c, (cols, labels) in enumerate(planes):
                ax = fig.add_subplot(gs[r, c])
                density_panel(fig, ax, pos, cols, params["mass"] / max(len(pos), 1), labels)
                ax.set_title(f"{labels[0]}-{labels[1]} projection  " + _title(s, pos, diags), fontsize=7)
        ax = fig.add_subplot(gs[n_snap, :])
    m2_panel(ax, dim, params, diags, t, m2)
    fig.suptitle(header, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def _title(s, pos, diags):
    core = _value_at(diags, "core_fraction", s["time"])
    extra = f", core {core:.3g}" if core is not None else ""
    return f"#{s['index']} t={s['time']:.4g} (step {s['step']}, N={len(pos)}{extra})"


def main(argv=None):
    args = build_parser().parse_args(argv)
    out_path = args.output or kh.default_output(args.file, "_ks.png")
    try:
        selection = kh.parse_snapshot_selection(args.snapshots) if args.snapshots is not None else None
        attrs, _, dim, params, diags, data, t, m2 = load(args.file, selection)
    except kh.KinflowError as exc:
        kh.cli_error(PROG, exc)
    except Exception as exc:  # corrupt datasets etc.: still one clean line
        kh.cli_error(PROG, f"cannot read '{args.file}': {type(exc).__name__}: {exc}")
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        kh.cli_error(PROG, f"output directory '{out_dir}' does not exist")
    make_plot(args.file, out_path, attrs, dim, params, diags, data, t, m2)
    print(out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
