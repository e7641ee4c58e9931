#!/usr/bin/env python3
"""Plot the /diagnostics time series of a kinflow HDF5 file.

One panel per group: means (mean_*), variances (variance_*), and everything
else (e.g. kinetic_energy).  For an Ornstein-Uhlenbeck Langevin deck
(dynamics = overdamped, potential = harmonic, init = gaussian) the exact
mean / variance curves (including the mean-field harmonic interaction) are
overlaid as dashed lines.

Usage: plot_moments.py FILE.h5 [-o OUT.png]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import kinflow_h5 as kh  # noqa: E402

PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "plot_moments.py"


def build_parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Plot kinflow diagnostics (moments) versus time.")
    p.add_argument("file", help="kinflow HDF5 output file")
    p.add_argument("-o", "--output", default=None,
                   help="output PNG (default: FILE with suffix replaced by _moments.png)")
    return p


def load(path):
    """Read everything needed; raises KinflowError on unusable input."""
    with kh.open_kinflow(path) as f:
        attrs = kh.load_root_attrs(f)
        deck = kh.load_deck(f)
        diags = kh.read_diagnostics(f)
        try:
            dim = kh.get_dim(f, deck)
        except kh.KinflowError:
            dim = None
    if not diags:
        raise kh.KinflowError(f"'{path}' has no /diagnostics datasets")
    if "time" not in diags:
        raise kh.KinflowError(f"'{path}' has no /diagnostics/time dataset")
    if len(diags) == 1:
        raise kh.KinflowError(f"'{path}' has no diagnostics besides 'time'")
    return attrs, deck, diags, dim


def group_names(diags):
    names = sorted((n for n in diags if n != "time"), key=kh.component_sort_key)
    groups = {
        "means": [n for n in names if n.startswith("mean_")],
        "variances": [n for n in names if n.startswith("variance_")],
    }
    grouped = set(groups["means"]) | set(groups["variances"])
    groups["other"] = [n for n in names if n not in grouped]
    return [(k, v) for k, v in groups.items() if v]


def exact_overlay(deck, dim, t_data):
    """Dict name -> (t, values) of exact OU curves, or {} if not applicable."""
    if not deck or not kh.is_ou_deck(deck) or not dim:
        return {}
    try:
        par = kh.ou_params(deck, dim)
    except ValueError as exc:
        kh.cli_warn(PROG, f"OU deck but parameters unusable, no exact overlay ({exc})")
        return {}
    finite = t_data[np.isfinite(t_data)]
    if finite.size == 0:
        return {}
    t0 = min(0.0, float(finite.min()))
    t1 = float(finite.max())
    if t1 <= t0:
        t1 = t0 + 1.0
    t = np.linspace(t0, t1, 400)
    out = {}
    for k in range(dim):
        m, v = kh.ou_exact(t, par["theta"][k], par["D"][k], par["c"][k],
                           par["mu0"][k], par["sigma0"][k], kappa=par["kappa"][k])
        out[f"mean_{k}"] = (t, m)
        out[f"variance_{k}"] = (t, v)
    return out


def make_plot(path, out_path, attrs, deck, diags, dim):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = diags["time"]
    groups = group_names(diags)
    exact = exact_overlay(deck, dim, t)

    fig, axes = plt.subplots(len(groups), 1, sharex=True, squeeze=False,
                             figsize=(7.5, 2.8 * len(groups) + 0.8))
    axes = axes[:, 0]
    titles = {"means": "means", "variances": "variances", "other": "other diagnostics"}
    for ax, (gname, names) in zip(axes, groups):
        for i, name in enumerate(names):
            y = diags[name]
            n = min(len(t), len(y))
            if len(y) != len(t):
                kh.cli_warn(PROG, f"diagnostic '{name}' has {len(y)} values but "
                                  f"'time' has {len(t)}; plotting the first {n}")
            color = f"C{i % 10}"
            ax.plot(t[:n], y[:n], "o-", ms=3, lw=1.2, color=color, label=name)
            if name in exact:
                te, ye = exact[name]
                ax.plot(te, ye, "--", lw=1.5, color=color, alpha=0.8,
                        label=f"{name} exact")
        ax.set_title(titles[gname], fontsize=10)
        ax.grid(True, alpha=0.3)
        ncol = 2 if len(ax.get_lines()) > 6 else 1
        ax.legend(fontsize=7, ncol=ncol, loc="best")
    axes[-1].set_xlabel("time")

    producer = attrs.get("producer", "?")
    header = f"{os.path.basename(path)}  (producer={producer}"
    if dim:
        header += f", dim={dim}"
    if "mpi_ranks" in attrs:
        header += f", ranks={attrs['mpi_ranks']}"
    header += ")"
    if exact:
        lv = deck.get("langevin", {})
        kind = ("mean-field OU" if lv.get("interaction", "none").lower() == "harmonic"
                else "OU")
        header += f"\ndashed: exact {kind}"
    fig.suptitle(header, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = build_parser().parse_args(argv)
    out_path = args.output or kh.default_output(args.file, "_moments.png")
    try:
        attrs, deck, diags, dim = load(args.file)
    except kh.KinflowError as exc:
        kh.cli_error(PROG, exc)
    except Exception as exc:  # corrupt datasets etc.: still one clean line
        kh.cli_error(PROG, f"cannot read '{args.file}': {type(exc).__name__}: {exc}")
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        kh.cli_error(PROG, f"output directory '{out_dir}' does not exist")
    make_plot(args.file, out_path, attrs, deck, diags, dim)
    print(out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
