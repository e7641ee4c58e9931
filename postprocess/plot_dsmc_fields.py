#!/usr/bin/env python3
"""Plot the cell fields of a spatial DSMC run (dsmc.space = grid): profiles along x of the
number density, the x velocity, the temperature (and T_x) and the x heat flux, averaged over
y and z, for every /fields/NNNNNN group (or the last one with --last), with the exact curves
where the deck is one of the exact collisionless problems (VERIFICATION.md, "Boltzmann,
spatial"):

* init = riemann, collisions = false, specular or periodic x faces: the collisionless Riemann
  problem n(x, t) = (n_L/2) erfc(x/(c_L t)) + (n_R/2) erfc(-x/(c_R t)) with the mirror images of
  the walls (period 2L; periodic: period L);
* diffuse x walls at T1, T2 without collisions: T = sqrt(T1 T2);
* init = riemann with collisions (the Sod deck): the exact Euler solution (ideal gas, gamma = 5/3;
  Toro 2009, ch. 4) for n, u_x and T;
* diffuse x walls with collisions (the Fourier and Couette decks): the near-continuum linear
  profiles with the hard-sphere temperature jump zeta_T = 2.127 lambda and slip zeta_u = 1.111
  lambda (Sone, Ohwada & Aoki 1989; Ohwada, Sone & Aoki 1989), u_y dashed;
* inflow on both x faces (the normal-shock deck): the upstream and Rankine-Hugoniot states, and the
  reciprocal shock thickness lambda_1/delta, delta = (n2 - n1)/max|dn/dx| (3-cell running mean),
  lambda_1 = (16/5) mu_1/(rho_1 sqrt(2 pi k T_1/m)), mu_1 the VHS viscosity (Bird 1994 eq. 4.62,
  times 1.016034 for hard spheres), printed for the last output.

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


def euler_riemann(gamma, left, right):
    """Exact Euler Riemann solution (Toro 2009, ch. 4) for states (rho, u, p); returns a function
    of xi = x/t giving (rho, u, p) arrays."""
    g = gamma
    (rL, uL, pL), (rR, uR, pR) = left, right
    aL, aR = math.sqrt(g * pL / rL), math.sqrt(g * pR / rR)

    def f(p, r, pk, a):
        if p > pk:
            A, B = 2 / ((g + 1) * r), (g - 1) / (g + 1) * pk
            return (p - pk) * math.sqrt(A / (p + B)), math.sqrt(A / (B + p)) * (1 - 0.5 * (p - pk) / (B + p))
        return 2 * a / (g - 1) * ((p / pk) ** ((g - 1) / (2 * g)) - 1), (p / pk) ** (-(g + 1) / (2 * g)) / (r * a)

    p = 0.5 * (pL + pR)
    for _ in range(100):
        (fl, dl), (fr, dr) = f(p, rL, pL, aL), f(p, rR, pR, aR)
        dp = (fl + fr + uR - uL) / (dl + dr)
        p = max(p - dp, 1e-12 * pL)
        if abs(dp) < 1e-15 * p:
            break
    ps = p
    us = 0.5 * (uL + uR) + 0.5 * (f(ps, rR, pR, aR)[0] - f(ps, rL, pL, aL)[0])

    def side(xi, r, u, pk, a, sgn):
        """The left wave (sgn = 1), or the right wave mirrored (sgn = -1: x -> -x, u -> -u)."""
        xi, u, um = sgn * xi, sgn * u, sgn * us
        pre = np.array([r + 0 * xi, u + 0 * xi, pk + 0 * xi])
        if ps > pk:  # shock (Toro eq. 4.52)
            S = u - a * math.sqrt((g + 1) / (2 * g) * ps / pk + (g - 1) / (2 * g))
            rs = r * (ps / pk + (g - 1) / (g + 1)) / ((g - 1) / (g + 1) * ps / pk + 1)
            out = np.where(xi < S, pre, np.array([rs + 0 * xi, um + 0 * xi, ps + 0 * xi]))
        else:  # rarefaction (Toro eq. 4.56)
            rs = r * (ps / pk) ** (1 / g)
            head, tail = u - a, um - a * (ps / pk) ** ((g - 1) / (2 * g))
            c = np.maximum(2 / (g + 1) + (g - 1) / ((g + 1) * a) * (u - xi), 0.0)
            fan = np.array([r * c ** (2 / (g - 1)), 2 / (g + 1) * (a + (g - 1) / 2 * u + xi), pk * c ** (2 * g / (g - 1))])
            star = np.array([rs + 0 * xi, um + 0 * xi, ps + 0 * xi])
            out = np.where(xi < head, pre, np.where(xi < tail, fan, star))
        out[1] *= sgn
        return out

    def solution(xi):
        xi = np.asarray(xi, dtype=float)
        L = side(xi, rL, uL, pL, aL, 1)
        R = side(xi, rR, uR, pR, aR, -1)
        return np.where(xi < us, L, R)

    solution.p_star, solution.u_star = ps, us
    return solution


def shock_thickness(x, n, n1, n2):
    """delta = (n2 - n1)/max|dn/dx| of the 3-cell running mean of n."""
    sm = np.convolve(n, np.ones(3) / 3, mode="same")
    g = np.abs(np.gradient(sm, x))[2:-2]
    return abs(n2 - n1) / g.max()


def vhs_viscosity(m, d, omega, T_ref, T, k):
    """Bird (1994) eq. 4.62: mu = 15 sqrt(pi m k T_ref) / (2 pi d^2 (5 - 2w)(7 - 2w)) (T/T_ref)^w."""
    return 15 * math.sqrt(math.pi * m * k * T_ref) / (2 * math.pi * d * d * (5 - 2 * omega) * (7 - 2 * omega)) * (
        T / T_ref) ** omega


def upstream_mean_free_path(kernel, m, d_ref, omega, T_ref, n1, T1, k):
    """Shock-thickness reference length lambda_1 = (16/5) mu_1 / (rho_1 sqrt(2 pi R T_1)) of the
    upstream state (Alsmeyer 1976, J. Fluid Mech. 74, 497; Bird 1994 eq. 4.52), mu_1 the VHS/VSS
    viscosity (hard spheres: omega = 1/2 at T_ref = T_1 with the Chapman-Enskog factor 1.016034)."""
    if kernel == "hard_sphere":
        omega, T_ref = 0.5, T1
    mu1 = vhs_viscosity(m, d_ref, omega, T_ref, T1, k) * (1.016034 if kernel == "hard_sphere" else 1.0)
    return 16 / 5 * mu1 / (n1 * m * math.sqrt(2 * math.pi * k * T1 / m))


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
                    uy=np.asarray(g["velocity"])[..., 1].mean(axis=(0, 1)),
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
    T0 = float(str(get("temperature", "1")).split(",")[0])
    n0 = float(get("number_density", 1))
    d_ref = float(str(get("d_ref", "1")).split(",")[0])
    omega = float(str(get("omega", "0.5")).split(",")[0])
    kernel = str(get("kernel", "maxwell"))
    xx = np.linspace(lo[0], hi[0], 400)
    if str(get("init", "uniform")) == "riemann" and collisions:  # exact Euler solution (gamma = 5/3)
        nR = float(get("density_right", 0))
        TR = float(get("temperature_right", "") or T0)
        uL = float(kh.parse_vector(get("drift", "0"), 3)[0])
        uR = float(kh.parse_vector(get("drift_right", "0"), 3)[0])
        if nR > 0:
            sol = euler_riemann(5 / 3, (n0 * m, uL, n0 * kB * T0), (nR * m, uR, nR * kB * TR))
            x0 = float(get("riemann_x0", 0.5))
            for k, g in enumerate(groups):
                if g["t"] > 0:
                    r, u, pr = sol((xx - x0) / g["t"])
                    col = cmap(k / max(1, len(groups) - 1))
                    ax[0, 0].plot(xx, r / m, "-", color=col, lw=0.8)
                    ax[0, 1].plot(xx, u, "--", color=col, lw=0.8)
                    ax[1, 0].plot(xx, pr / (r / m * kB), "--", color=col, lw=0.8)
            print(f"{PROG}: exact Euler (gamma = 5/3): p*/p_L = {sol.p_star / (n0 * kB * T0):.6f}, "
                  f"u* = {sol.u_star:.4g}")
    if boundary[0] == "diffuse" and boundary[1] == "diffuse" and collisions and kernel in ("hard_sphere", "vhs", "vss"):
        # near continuum: linear profiles with the hard-sphere temperature jump and velocity slip
        lam = 1 / (math.sqrt(2) * math.pi * d_ref**2 * float(np.mean(groups[-1]["n"])))
        Tw = [float(v) for v in str(get("wall_temperature", "1")).split(",")]
        Tw = Tw * 6 if len(Tw) == 1 else Tw
        wv = [float(v) for v in str(get("wall_velocity", "0")).split(",") if v.strip()]
        uw = wv * 18 if len(wv) == 1 else wv * 6 if len(wv) == 3 else wv  # 1, 3 or 18 values
        L = hi[0] - lo[0]
        zT, zu = 2.127 * lam, 1.111 * lam
        ax[1, 0].plot(xx, Tw[0] + (Tw[1] - Tw[0]) * (xx - lo[0] + zT) / (L + 2 * zT), "k--", lw=0.8,
                      label="linear, jump 2.127 lambda")
        ax[1, 0].legend(fontsize=7)
        if len(uw) == 18 and uw[1] != uw[4]:
            ax[0, 1].plot(xx, uw[1] + (uw[4] - uw[1]) * (xx - lo[0] + zu) / (L + 2 * zu), "k--", lw=0.8,
                          label="u_y linear, slip 1.111 lambda")
            for k, g in enumerate(groups):
                ax[0, 1].plot(x, g["uy"], ":", color=cmap(k / max(1, len(groups) - 1)))
            ax[0, 1].legend(fontsize=7)
    if boundary[0] == "inflow" and boundary[1] == "inflow":  # normal shock: upstream and downstream states
        nin = kh.parse_vector(get("inflow_density", str(n0)), 6)
        Tin = kh.parse_vector(get("inflow_temperature", str(T0)), 6)
        for v in nin[:2]:
            ax[0, 0].axhline(v, color="k", ls="--", lw=0.8)
        for v in Tin[:2]:
            ax[1, 0].axhline(v, color="k", ls="--", lw=0.8)
        n1, n2, T1 = float(nin[0]), float(nin[1]), float(Tin[0])
        if n1 != n2 and kernel in ("hard_sphere", "vhs", "vss"):
            lam1 = upstream_mean_free_path(kernel, m, d_ref, omega, float(get("T_ref", T1)), n1, T1, kB)
            delta = shock_thickness(x, groups[-1]["n"], n1, n2)
            print(f"{PROG}: shock: lambda_1 = {lam1:.4g}, delta = {delta:.4g}, lambda_1/delta = {lam1 / delta:.3f} "
                  f"(Alsmeyer 1976, argon: 0.27-0.29 +- 0.03 near M = 3)")
    if boundary[0] == "diffuse" and boundary[1] == "diffuse" and not collisions:
        Tw = [float(v) for v in str(get("wall_temperature", "1")).split(",")]
        if len(Tw) == 1:
            Tw *= 6
        ax[1, 0].axhline(math.sqrt(Tw[0] * Tw[1]), color="k", ls="--", label="sqrt(T1 T2)")
        ax[1, 0].legend()
    ax[0, 0].set_ylabel("number density")
    ax[0, 1].set_ylabel("velocity x (u_y dotted)")
    ax[1, 0].set_ylabel("temperature (solid), T_x (dotted)")
    ax[1, 1].set_ylabel("heat flux x")
    for a in ax.flat:
        a.set_xlabel("x")
    ax[0, 0].legend(fontsize=7)
    fig.suptitle(os.path.basename(args.file) + " — thin/dashed lines: exact or reference solution")
    fig.tight_layout()
    out = args.output or kh.default_output(args.file, "_fields.png")
    fig.savefig(out, dpi=110)
    print(f"{PROG}: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
