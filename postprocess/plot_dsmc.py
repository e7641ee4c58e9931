#!/usr/bin/env python3
"""Plot a kinflow DSMC run (producer ``dsmc``): one PNG with

* per-species temperatures against time: total (solid), x axis (dashed) and
  the mean of y and z (dotted), plus the mixture temperature (black);
* the normalized moments m4 = <|c|^4> and m6 = <|c|^6> of each species
  (c = (v - u_s)/sqrt(k_B T_s/m_s); 15 and 105 for a Maxwellian), with the
  exact BKW curves m4 = 30K - 15K^2, m6 = 315K^2 - 210K^3,
  K(t) = 1 - exp(-(bkw_t0 + nu t)/6) overlaid when the deck is BKW
  (kernel = maxwell, init = bkw, one species), else the Maxwellian values;
* histograms of the scaled speed |c| of each species in the first and the last
  snapshot, against the Maxwell speed density (and the exact BKW density at
  those times for a BKW deck).

The time axis is logarithmic beyond the first output time (symlog: t = 0 stays
on the plot) when the output times span more than two decades, e.g. the
disparate-mass mixture (light, heavy and mutual relaxation).

Usage: plot_dsmc.py FILE.h5 [-o OUT.png] [--log-time | --linear-time]
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import kinflow_h5 as kh  # noqa: E402

PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "plot_dsmc.py"

BKW_MIN_TIME = 6.0 * math.log(2.5)


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description="Plot the diagnostics and velocity histograms of a kinflow DSMC run.")
    p.add_argument("file", help="kinflow HDF5 output file written by the dsmc engine")
    p.add_argument("-o", "--output", default=None,
                   help="output PNG (default: FILE with suffix replaced by _dsmc.png)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--log-time", dest="log_time", action="store_true", default=None,
                   help="logarithmic time axis")
    g.add_argument("--linear-time", dest="log_time", action="store_false",
                   help="linear time axis")
    return p


# --------------------------------------------------------------------------
# exact BKW solution (VERIFICATION.md)
# --------------------------------------------------------------------------

def bkw_K(tau):
    """K at BKW time tau (collision times): 1 - exp(-tau/6)."""
    return -np.expm1(-np.asarray(tau, dtype=float) / 6.0)


def bkw_m4(K):
    K = np.asarray(K, dtype=float)
    return 30.0 * K - 15.0 * K * K


def bkw_m6(K):
    K = np.asarray(K, dtype=float)
    return 315.0 * K * K - 210.0 * K ** 3


def bkw_speed_density(w, K):
    """Density of the speed |v| for the BKW f at parameter K (temperature 1)."""
    w = np.asarray(w, dtype=float)
    f = (2 * math.pi * K) ** -1.5 * np.exp(-w * w / (2 * K)) * ((5 * K - 3) / (2 * K) + (1 - K) * w * w / (2 * K * K))
    return 4 * math.pi * w * w * f


def maxwell_speed_density(w):
    """Density of |c| for a Maxwellian of unit temperature (chi distribution, 3 dof)."""
    w = np.asarray(w, dtype=float)
    return math.sqrt(2 / math.pi) * w * w * np.exp(-w * w / 2)


# --------------------------------------------------------------------------
# deck
# --------------------------------------------------------------------------

def _float(deck, key, default):
    v = kh.deck_get(deck, "dsmc", key)
    try:
        return float(v) if v is not None else default
    except ValueError:
        raise kh.KinflowError(f"deck: [dsmc] {key} = '{v}' is not a number") from None


def species_names(deck, diags):
    """Species from the deck ([dsmc] species), else from the diagnostics' names."""
    raw = kh.deck_get(deck, "dsmc", "species")
    if raw:
        names = [s.strip() for s in raw.split(",") if s.strip()]
        if all(f"temperature_{s}" in diags for s in names):
            return names
    names = []
    for k in diags:
        if k.startswith("temperature_") and k.endswith("_x"):
            names.append(k[len("temperature_"):-2])
    return sorted(names)


def bkw_params(deck, nspecies):
    """(bkw_t0, nu) when the deck is a BKW problem, else None."""
    d = deck.get("dsmc", {})
    if nspecies != 1 or d.get("kernel", "").lower() != "maxwell" or d.get("init", "").strip().lower() != "bkw":
        return None
    return _float(deck, "bkw_t0", BKW_MIN_TIME), _float(deck, "collision_rate", 1.0)


def k_boltzmann(deck):
    return 1.380649e-23 if (kh.deck_get(deck, "dsmc", "units", "normalized") or "").lower() == "si" else 1.0


def masses(deck, names):
    raw = kh.deck_get(deck, "dsmc", "mass", "1")
    try:
        return kh.parse_vector(raw, len(names), "[dsmc] mass")
    except ValueError as exc:
        raise kh.KinflowError(f"deck: {exc}") from None


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------

def load(path):
    """Everything the plot needs; raises KinflowError on unusable input."""
    with kh.open_kinflow(path) as f:
        attrs = kh.load_root_attrs(f)
        if attrs.get("producer", "dsmc") != "dsmc":
            raise kh.KinflowError(f"'{path}' was written by '{attrs.get('producer')}', not by the dsmc engine")
        deck = kh.load_deck(f)
        diags = kh.read_diagnostics(f)
        if "time" not in diags:
            raise kh.KinflowError(f"'{path}' has no /diagnostics/time dataset")
        names = species_names(deck, diags)
        if not names:
            raise kh.KinflowError(f"'{path}' has no per-species temperature diagnostics (temperature_<species>)")
        snaps = kh.list_snapshots(f)
        hist = []
        for s in ([snaps[0], snaps[-1]] if len(snaps) > 1 else snaps):
            g = f[s["path"]]
            key = "velocity" if "velocity" in g else "position"
            if key not in g:
                raise kh.KinflowError(f"snapshot {s['path']} has neither 'velocity' nor 'position'")
            v = kh.read_numeric(g[key], f"snapshot {s['path']}: '{key}'", (2,))
            if v.shape[1] != 3:
                raise kh.KinflowError(f"snapshot {s['path']}: '{key}' has {v.shape[1]} columns, not 3")
            sp = (kh.read_numeric(g["species"], f"snapshot {s['path']}: 'species'", (1,)).astype(int)
                  if "species" in g else np.zeros(len(v), dtype=int))
            if len(sp) != len(v):
                raise kh.KinflowError(f"snapshot {s['path']}: 'species' has {len(sp)} rows, '{key}' {len(v)}")
            hist.append((s["time"], v, sp))
    return attrs, deck, diags, names, hist


# --------------------------------------------------------------------------
# plotting
# --------------------------------------------------------------------------

def _use_log_time(t, requested):
    if requested is not None:
        return requested and np.any(t > 0)
    pos = t[t > 0]
    return pos.size > 2 and pos.max() / pos.min() > 100


def make_plot(path, out_path, attrs, deck, diags, names, hist, log_time=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = diags["time"]
    logt = _use_log_time(t, log_time)
    sel = np.ones_like(t, dtype=bool)
    t_lin = float(t[t > 0].min()) if np.any(t > 0) else 1.0  # symlog: linear below the first output
    bkw = bkw_params(deck, len(names))
    kB = k_boltzmann(deck)
    m = masses(deck, names)

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (ax_t, ax_m), (ax_h0, ax_h1) = axes

    # temperatures
    for i, s in enumerate(names):
        c = f"C{i % 10}"
        ax_t.plot(t[sel], diags[f"temperature_{s}"][sel], "-", color=c, lw=1.6, label=f"T {s}")
        if f"temperature_{s}_x" in diags:
            ax_t.plot(t[sel], diags[f"temperature_{s}_x"][sel], "--", color=c, lw=1.0, label=f"T_x {s}")
            tp = 0.5 * (diags[f"temperature_{s}_y"] + diags[f"temperature_{s}_z"])
            ax_t.plot(t[sel], tp[sel], ":", color=c, lw=1.2, label=f"(T_y+T_z)/2 {s}")
    if len(names) > 1 and "temperature" in diags:
        ax_t.plot(t[sel], diags["temperature"][sel], "-", color="k", lw=1.0, alpha=0.7, label="T mixture")
    ax_t.set_title("temperatures" + (" (K)" if kB != 1.0 else ""), fontsize=10)

    # moments: m4 on the left axis (circles, dashed exact), m6 on the right axis (squares, dash-dot)
    ax_m6 = ax_m.twinx()
    for i, s in enumerate(names):
        c = f"C{i % 10}"
        if f"m4_{s}" in diags:
            ax_m.plot(t[sel], diags[f"m4_{s}"][sel], "o-", ms=3, lw=1.0, color=c, label=f"m4_{s}")
        if f"m6_{s}" in diags:
            ax_m6.plot(t[sel], diags[f"m6_{s}"][sel], "s:", ms=3, lw=1.0, color=c, label=f"m6_{s} (right axis)")
    if bkw is not None:
        t0, nu = bkw
        te = np.linspace(t.min(), t.max(), 400) if not logt else np.concatenate([np.linspace(0, t_lin, 50), np.geomspace(t_lin, t.max(), 400)])
        K = bkw_K(t0 + nu * te)
        ax_m.plot(te, bkw_m4(K), "k--", lw=1.2, label="BKW exact m4 = 30K - 15K^2")
        ax_m6.plot(te, bkw_m6(K), "k-.", lw=1.2, label="BKW exact m6 = 315K^2 - 210K^3")
    else:
        ax_m.axhline(15, color="k", ls="--", lw=0.8, label="Maxwellian m4 = 15")
        ax_m6.axhline(105, color="k", ls="-.", lw=0.8, label="Maxwellian m6 = 105")
    ax_m.set_ylabel("m4")
    ax_m6.set_ylabel("m6")
    ax_m.set_title("normalized moments <|c|^4> (left), <|c|^6> (right)", fontsize=10)

    for ax in (ax_t, ax_m):
        ax.set_xlabel("time" + (" (s)" if kB != 1.0 else ""))
        if logt:
            ax.set_xscale("symlog", linthresh=t_lin)
            ax.set_xlim(left=0, right=float(t.max()) * 1.05)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(ax.get_lines()) > 6 else 1, loc="best")
    h1, l1 = ax_m.get_legend_handles_labels()
    h2, l2 = ax_m6.get_legend_handles_labels()
    if ax_m.get_legend():
        ax_m.get_legend().remove()
    ax_m6.legend(h1 + h2, l1 + l2, fontsize=7, ncol=2 if len(l1 + l2) > 6 else 1, loc="best", framealpha=0.9)

    # speed histograms of the first and the last snapshot
    w = np.linspace(0, 5, 300)
    for ax, item in zip((ax_h0, ax_h1), hist + [None] * (2 - len(hist))):
        if item is None:
            ax.set_visible(False)
            continue
        ts, v, sp = item
        for i, s in enumerate(names):
            vs = v[sp == i]
            if len(vs) < 2:
                continue
            cvec = vs - vs.mean(axis=0)
            c2 = np.sum(cvec * cvec, axis=1)
            T = m[i] * c2.mean() / (3 * kB)
            scaled = np.sqrt(c2 / (kB * T / m[i])) if T > 0 else np.sqrt(c2)
            bins = max(10, min(100, int(np.sqrt(len(vs)) / 2)))
            ax.hist(scaled, bins=bins, range=(0, 5), density=True, histtype="step", lw=1.4, color=f"C{i % 10}", label=f"{s} (N={len(vs)})")
        ax.plot(w, maxwell_speed_density(w), "k--", lw=1.0, label="Maxwell")
        if bkw is not None:
            t0, nu = bkw
            K = float(bkw_K(t0 + nu * ts))
            ax.plot(w, bkw_speed_density(w, K), "k:", lw=1.4, label=f"BKW exact (K={K:.3f})")
        ax.set_title(f"speed |c| / sqrt(k T_s / m_s), t = {ts:g}", fontsize=10)
        ax.set_xlabel("scaled speed")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")

    header = f"{os.path.basename(path)}  (producer=dsmc, ranks={attrs.get('mpi_ranks', '?')}"
    d = deck.get("dsmc", {})
    if d:
        header += f", scheme={d.get('scheme', '?')}, kernel={d.get('kernel', '?')}"
    header += ")"
    if "energy" in diags and diags["energy"][0] != 0:
        drift = np.max(np.abs(diags["energy"] / diags["energy"][0] - 1))
        header += f"\nmax relative energy drift {drift:.1e}"
        if "collisions" in diags:
            c = diags["collisions"][-1]
            header += f", {int(c)} collisions" if np.isfinite(c) else ", collisions not finite"
    fig.suptitle(header, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = build_parser().parse_args(argv)
    out_path = args.output or kh.default_output(args.file, "_dsmc.png")
    try:
        attrs, deck, diags, names, hist = load(args.file)
    except kh.KinflowError as exc:
        kh.cli_error(PROG, exc)
    except Exception as exc:  # corrupt datasets etc.: still one clean line
        kh.cli_error(PROG, f"cannot read '{args.file}': {type(exc).__name__}: {exc}")
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        kh.cli_error(PROG, f"output directory '{out_dir}' does not exist")
    try:
        make_plot(args.file, out_path, attrs, deck, diags, names, hist, args.log_time)
    except kh.KinflowError as exc:
        kh.cli_error(PROG, exc)
    print(out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
