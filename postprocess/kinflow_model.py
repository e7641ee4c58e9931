#!/usr/bin/env python3
"""Evaluate a trained kinflow model from its MODEL.h5 with numpy (no LibTorch).

``kinflow-train`` writes, next to the LibTorch model file, the same model as plain HDF5
(``train.model_h5``, default MODEL_FILE with ``.pt`` replaced by ``.h5``; schema in
docs/model_h5.md).  This module reads it and evaluates the network as kinflow-sample does:

    import kinflow_model
    m = kinflow_model.load("out/model.h5")
    v = m.velocity(x, t, cond)    # fm, otfm, tfm; dsm: its probability-flow ODE field; meanflow: u(x, t, t)
    s = m.score(x, t, cond)       # dsm
    y = m.map(x0, cond)           # w2map
    u = m.average_velocity(x, s, t, cond)   # meanflow, flowmap: u(x, s, t), the average velocity over [s, t]
    y = m.jumps(x0, nfe, cond)    # meanflow, flowmap: kinflow-sample's nfe jumps from source samples x0
    out = m.evaluate(x, t, cond)  # whichever of the three the objective has (map or velocity)

Units.  ``x`` and the results are physical (the data's coordinates, [n, dim]); ``cond`` holds the
raw condition values in the order of ``m.conditions`` (as sample.condition); ``t`` is the path
time in [0, 1] (fm, otfm; dsm: [0, 1 - vp_eps], t = 1 the data) or, for tfm, the physical time.
The network itself works in normalised coordinates x_hat = (x - mean) / std (the target's
normalisation, ``m.mean``, ``m.std``); ``m.network(x_hat, t_net, cond_hat)`` is its raw output.
The physical quantities are, with v_hat the network output:

* fm / otfm: dx/dt = std * v_hat(x_hat, t);  tfm: dx/dt = std * v_hat(x_hat, T) / time_scale with
  T = (t - time_origin) / time_scale (kinflow-sample integrates dx_hat/dT = v_hat from T = 0);
* dsm: the network predicts the noise eps; score = grad_x log p_t(x) = -eps / (sigma_t * std);
  velocity = std * beta(t) / 2 * (x_hat - eps / sigma_t), the probability-flow ODE field that
  kinflow-sample integrates (VP schedule: beta(t) = beta_min + (1 - t)(beta_max - beta_min));
* w2map: map(x0) = mean + std * f(x0_hat), x0 a source sample as kinflow-sample draws it (see
  ``source_to_model``);
* meanflow: the network u_hat(x_hat, s, t - s) (inputs: the time s of x and the gap t - s) is the
  average velocity over [s, t] (Geng et al. 2025): average_velocity(x, s, t) = std * u_hat;
  velocity(x, t) = std * u_hat(x_hat, t, 0), the instantaneous velocity; kinflow-sample takes nfe
  jumps x_hat <- x_hat + (t' - t) u_hat(x_hat, t, t' - t) on a uniform grid of [0, 1] (``jumps``);
* flowmap: the same network and methods; the flow map is X(x, s, t) = x + (t - s) average_velocity(x, s, t).

kinflow-sample draws the source x0 (gaussian / uniform noise: already in model coordinates; a
snapshot source: physical positions, normalised by the source snapshot's mean and std), carries
x_hat from the source to the data and reports mean + std * x_hat.  ``m.start(x0)`` is the physical
point a flow starts from (x0 itself for tfm, whose source and target share one normalisation).

Like LibTorch, the network sees float32 inputs (coordinates, times, conditions and the products
omega_k t are rounded to float32); the arithmetic is float64 on the stored float32 weights.
Tested equal to LibTorch's output to 1e-6 for every objective, activation and condition
embedding (tests/postprocess/test_kinflow_model.py).  Needs numpy and h5py (scipy, when present,
speeds up gelu's erf).

Command line: ``kinflow_model.py MODEL.h5`` prints the architecture; with ``--points FILE``
(.npy [n, dim], or a kinflow HDF5 file's snapshot positions) it evaluates ``--quantity`` and
prints the rows or saves them (``--out OUT.npy``).
"""

import argparse
import math
import os
import sys

import numpy as np

try:
    import h5py
except ImportError:  # pragma: no cover - exercised only on broken installs
    h5py = None

try:  # optional: a vectorised erf for gelu; math.erf otherwise
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - depends on the installation
    _erf = np.vectorize(math.erf, otypes=[np.float64])

SCHEMA_VERSION = 1
OBJECTIVES = ("fm", "otfm", "dsm", "w2map", "tfm", "meanflow", "reflow", "flowmap")
ACTIVATIONS = ("silu", "gelu", "tanh")


class ModelError(Exception):
    """A missing, damaged or unsuitable MODEL.h5, or inputs that do not fit the model."""


def _activation(name):
    if name == "silu":  # x sigmoid(x)
        def silu(z):
            with np.errstate(over="ignore"):
                return z / (1.0 + np.exp(-z))
        return silu
    if name == "gelu":  # torch's default (exact) gelu: x Phi(x)
        return lambda z: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))
    if name == "tanh":
        return np.tanh
    raise ModelError(f"unknown activation '{name}'")


def _f32(a):
    """Round to float32 (what LibTorch's network sees), back in float64 for the arithmetic."""
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


def _text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v[()])
    return str(v)


class Model:
    """A kinflow model read from MODEL.h5 (see the module docstring for units)."""

    def __init__(self, path):
        self.path = str(path)
        if h5py is None:
            raise ModelError("h5py is not installed")
        if not os.path.exists(self.path):
            raise ModelError(f"'{self.path}': no such file")
        try:
            f = h5py.File(self.path, "r")
        except OSError as e:
            raise ModelError(f"'{self.path}': not an HDF5 file (damaged or truncated?): {e}") from None
        with f:
            if "kinflow_model_h5" not in f.attrs:
                raise ModelError(f"'{self.path}': not a kinflow MODEL.h5 (no kinflow_model_h5 attribute)")
            version = int(f.attrs["kinflow_model_h5"])
            if version > SCHEMA_VERSION:
                raise ModelError(f"'{self.path}': MODEL.h5 format {version}, this reader knows up to {SCHEMA_VERSION}")
            try:
                self._read(f)
            except (KeyError, ValueError, TypeError, OSError) as e:
                raise ModelError(f"'{self.path}': damaged kinflow MODEL.h5 ({e})") from None

    def _read(self, f):
        a = f.attrs
        self.attrs = {k: (_text(v) if isinstance(v, (bytes, str)) else v) for k, v in a.items()}
        self.kinflow_version = _text(a["kinflow_version"])
        self.objective = _text(a["objective"])
        self.activation = _text(a["activation"])
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective '{self.objective}'")
        self._act = _activation(self.activation)
        # dsm with train.score_model = potential: one output phi, the score grad_x phi / sigma_t (not
        # evaluated here: this reader has no input gradients); absent before it: vector
        self.score_model = _text(a["score_model"]) if "score_model" in a else "vector"
        if self.score_model != "vector":
            raise ModelError(f"'{self.path}': score_model = {self.score_model}: the score is the input gradient of a "
                             "scalar network, which this numpy reader does not evaluate (use kinflow-sample)")
        self.film = _text(a["condition_embedding"]) == "film"
        self.dim = int(a["dim"])
        self.cond_dim = int(a["cond_dim"])
        self.hidden = int(a["hidden"])
        self.layers = int(a["layers"])
        self.time_features = int(a["time_features"])
        # meanflow: 2 (s and the gap t - s, each with time_features features); absent before it: 1
        self.time_inputs = int(a["time_inputs"]) if "time_inputs" in a else 1
        self.film_width = int(a["film_width"])
        names = _text(a["conditions"])
        self.conditions = names.split(",") if names else []
        self.source = _text(a["source"])
        self.target_time = float(a["target_time"])
        self.time_origin = float(a["time_origin"])
        self.time_scale = float(a["time_scale"])
        self.beta_min = float(a["beta_min"])
        self.beta_max = float(a["beta_max"])
        self.vp_eps = float(a["vp_eps"])
        self.step = int(a["step"])
        # w2map with train.corrector: the first-stage model file (absent before correctors: none)
        self.corrector = _text(a["corrector"]) if "corrector" in a else ""
        self.deck = _text(a["deck"])
        # train.time_gate: the output times g = -expm1(-(c_hat_k - origin) / scale), k = gate_column
        # (absent before the gate, or -1: none)
        self.gate_column = int(a["output_gate_column"]) if "output_gate_column" in a else -1
        self.gate_origin = float(a["output_gate_origin"]) if "output_gate_origin" in a else 0.0
        self.gate_scale = float(a["output_gate_scale"]) if "output_gate_scale" in a else 1.0
        if not (-1 <= self.gate_column < self.cond_dim) or (self.gate_column >= 0 and not (
                np.isfinite(self.gate_origin) and np.isfinite(self.gate_scale) and self.gate_scale > 0)):
            raise ValueError(f"output gate column {self.gate_column} of {self.cond_dim} conditions, scale {self.gate_scale}")
        if len(self.conditions) != self.cond_dim:
            raise ValueError(f"{len(self.conditions)} condition names for cond_dim {self.cond_dim}")
        n = f["normalization"]
        self.mean, self.std = n["mean"][()].astype(np.float64), n["std"][()].astype(np.float64)
        self.source_mean, self.source_std = n["source_mean"][()].astype(np.float64), n["source_std"][()].astype(np.float64)
        self.cond_mean, self.cond_std = n["cond_mean"][()].astype(np.float64), n["cond_std"][()].astype(np.float64)
        for name, v, size in [("mean", self.mean, self.dim), ("std", self.std, self.dim),
                              ("cond_mean", self.cond_mean, self.cond_dim), ("cond_std", self.cond_std, self.cond_dim)]:
            if v.shape != (size,):
                raise ValueError(f"normalization/{name} has shape {v.shape}, expected ({size},)")
        if self.source_mean.size not in (0, self.dim):
            raise ValueError(f"normalization/source_mean has shape {self.source_mean.shape}")
        net = f["network"]
        # omega_k as the network holds them (float32): the time features are sin/cos(float32(omega_k t)).
        self.omega = net["time_frequencies"][()].astype(np.float32)
        if self.omega.shape != (self.time_features // 2,):
            raise ValueError(f"network/time_frequencies has shape {self.omega.shape}")

        def layer(name, n_in, n_out):
            w = net[name]["weight"][()]
            b = net[name]["bias"][()]
            if w.shape != (n_out, n_in) or b.shape != (n_out,):
                raise ValueError(f"network/{name} has shapes {w.shape}, {b.shape}, expected ({n_out}, {n_in}), ({n_out},)")
            return w.astype(np.float64), b.astype(np.float64)

        embed_width = self.time_inputs * self.time_features + self.cond_dim
        widths = [self.dim if self.film else self.dim + embed_width] + [self.hidden] * self.layers + [self.dim]
        self.weights = [layer(f"linear{l}", widths[l], widths[l + 1]) for l in range(self.layers + 1)]
        if self.film:
            self.embed = layer("embed", embed_width, self.film_width)
            self.modulation = layer("film", self.film_width, 2 * self.layers * self.hidden)

    # ---- the network (normalised units) -------------------------------------------------------

    def _rows(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1 and self.dim == 1:
            x = x.reshape(-1, 1)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ModelError(f"points have shape {x.shape}, the model dim is {self.dim}")
        return x

    def _column(self, v, n, what):
        v = np.asarray(0.0 if v is None else v, dtype=np.float64).reshape(-1)
        if v.size == 1:
            return np.full((n, 1), v[0])
        if v.size != n:
            raise ModelError(f"{what}: {v.size} values for {n} points")
        return v.reshape(n, 1)

    def _cond_rows(self, cond, n, normalised):
        if self.cond_dim == 0:
            if cond is not None and np.asarray(cond).size > 0:
                raise ModelError("the model has no conditions, condition values were given")
            return np.zeros((n, 0))
        if cond is None:
            names = ", ".join(self.conditions)
            raise ModelError(f"the model was trained with {self.cond_dim} condition(s) ({names}): give their values")
        c = np.asarray(cond, dtype=np.float64)
        if c.ndim <= 1:
            c = c.reshape(1, -1)
        if c.shape[1] != self.cond_dim or c.shape[0] not in (1, n):
            raise ModelError(f"conditions have shape {c.shape}, expected ({self.cond_dim},) or ({n}, {self.cond_dim})")
        if not normalised:
            c = (c - self.cond_mean) / self.cond_std
        return np.broadcast_to(_f32(c), (n, self.cond_dim))

    def network(self, x_hat, t=0.0, cond_hat=None, gap=0.0):
        """The raw network output [n, dim] for normalised rows x_hat [n, dim], network time t
        (scalar or [n]; tfm: normalised time T; meanflow: the time s of x; ignored by w2map),
        normalised conditions cond_hat ([cond_dim] or [n, cond_dim]) and, for meanflow, the gap
        t - s (scalar or [n]; 0: the instantaneous velocity), exactly the function LibTorch evaluates."""
        x = _f32(self._rows(x_hat))
        return self._forward(x, t, self._cond_rows(cond_hat, x.shape[0], normalised=True), gap)

    def _forward(self, x, t, c, gap=0.0):
        n = x.shape[0]
        extra = []
        if self.time_features > 0:
            # float32(omega_k * float32(t)), then sin and cos (LibTorch: float32 mul, then sin/cos)
            for tk, what in [(t, "t"), (gap, "gap")][:self.time_inputs]:
                arg = (self._column(tk, n, what).astype(np.float32) * self.omega[None, :]).astype(np.float64)
                extra += [np.sin(arg), np.cos(arg)]
        e = np.concatenate(extra + [c], axis=1)
        act = self._act
        if self.film:
            we, be = self.embed
            wf, bf = self.modulation
            gb = act(e @ we.T + be) @ wf.T + bf
            h = x
        else:
            h = np.concatenate([x, e], axis=1)
        hidden = self.hidden
        for l, (w, b) in enumerate(self.weights[:-1]):
            z = h @ w.T + b
            if self.film:  # z (1 + gamma_l) + beta_l
                z = z * (1.0 + gb[:, 2 * l * hidden:(2 * l + 1) * hidden]) + gb[:, (2 * l + 1) * hidden:(2 * l + 2) * hidden]
            h = act(z)
        w, b = self.weights[-1]
        y = h @ w.T + b
        if self.gate_column >= 0:  # LibTorch's float32 arithmetic: (c - float32(origin)) * float32(-1 / scale)
            u = (c[:, self.gate_column:self.gate_column + 1].astype(np.float32) - np.float32(self.gate_origin)) \
                * np.float32(-1.0 / self.gate_scale)
            y = y * -np.expm1(u.astype(np.float64))
        return y

    # ---- coordinates ------------------------------------------------------------------------

    def normalise(self, x):
        """Physical rows -> model coordinates (x - mean) / std."""
        return (self._rows(x) - self.mean) / self.std

    def denormalise(self, x_hat):
        """Model coordinates -> physical rows mean + std x_hat."""
        return self.mean + self.std * self._rows(x_hat)

    def source_to_model(self, x0):
        """A source sample as kinflow-sample draws it -> model coordinates: a snapshot source's
        physical positions normalised by the source snapshot's mean and std; noise (gaussian,
        uniform) is already in model coordinates."""
        x0 = self._rows(x0)
        if self.source_mean.size == 0:
            return x0
        return (x0 - self.source_mean) / self.source_std

    def start(self, x0):
        """The physical point the flow from source sample x0 starts at: mean + std * source_to_model(x0)."""
        return self.denormalise(self.source_to_model(x0))

    def normalise_condition(self, cond):
        """Raw condition values -> the network's (c - cond_mean) / cond_std."""
        return (np.asarray(cond, dtype=np.float64) - self.cond_mean) / self.cond_std

    # ---- physical quantities ----------------------------------------------------------------

    def _require(self, what, objectives):
        if self.objective not in objectives:
            raise ModelError(f"{what} needs a {' | '.join(objectives)} model; this model is {self.objective}")

    def _vp(self, t):
        t = np.asarray(t, dtype=np.float64)
        s = 1.0 - t
        log_alpha = -0.5 * (self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s * s)
        beta = self.beta_min + s * (self.beta_max - self.beta_min)
        return beta, np.sqrt(-np.expm1(2.0 * log_alpha))

    def _physical(self, x, cond):
        xh = _f32(self.normalise(x))
        return xh, self._cond_rows(cond, xh.shape[0], normalised=False)

    def velocity(self, x, t, cond=None):
        """dx/dt [n, dim] at physical rows x, time t (scalar or [n]), raw conditions cond:
        the flow-matching velocity (fm, otfm, tfm with t physical), dsm's probability-flow field or
        meanflow's instantaneous velocity u(x, t, t)."""
        self._require("velocity", ("fm", "otfm", "reflow", "tfm", "dsm", "meanflow", "flowmap"))
        xh, c = self._physical(x, cond)
        n = xh.shape[0]
        if self.objective == "tfm":
            tn = (self._column(t, n, "t") - self.time_origin) / self.time_scale
            return self.std * self._forward(xh, tn, c) / self.time_scale
        tc = self._column(t, n, "t")
        out = self._forward(xh, tc, c)
        if self.objective == "dsm":
            beta, sigma = self._vp(tc)
            out = 0.5 * beta * xh - (0.5 * beta / sigma) * out  # beta (x + score) / 2, score = -eps / sigma
        return self.std * out

    def average_velocity(self, x, s, t, cond=None):
        """meanflow: the average velocity u(x, s, t) [n, dim] over [s, t] (physical units per unit
        path time) at physical rows x lying at path time s; s and t scalars or [n], s <= t in [0, 1]."""
        self._require("average_velocity", ("meanflow", "flowmap"))
        xh, c = self._physical(x, cond)
        n = xh.shape[0]
        sc = self._column(s, n, "s")
        return self.std * self._forward(xh, sc, c, self._column(t, n, "t") - sc)

    def jumps(self, x0, nfe=1, cond=None):
        """meanflow: the generated physical points [n, dim] of source samples x0 (see
        source_to_model) after kinflow-sample's nfe jumps x_hat <- x_hat + (t' - t) u_hat(x_hat, t, t' - t)
        on the uniform grid t_k = k / nfe (in float64 here; kinflow-sample steps in float32)."""
        self._require("jumps", ("meanflow", "flowmap"))
        nfe = int(nfe)
        if nfe < 1:
            raise ModelError(f"nfe must be >= 1, got {nfe}")
        xh = self.source_to_model(x0).astype(np.float64)
        c = self._cond_rows(cond, xh.shape[0], normalised=False)
        for k in range(nfe):
            s, t = k / nfe, (1.0 if k + 1 == nfe else (k + 1) / nfe)
            xh = xh + (t - s) * self._forward(_f32(xh), s, c, t - s)
        return self.denormalise(xh)

    def score(self, x, t, cond=None):
        """grad_x log p_t(x) [n, dim] of the VP-perturbed data law at physical rows x, path time
        t in [0, 1 - vp_eps] (t = 1 the data; dsm models)."""
        self._require("score", ("dsm",))
        xh, c = self._physical(x, cond)
        tc = self._column(t, xh.shape[0], "t")
        _, sigma = self._vp(tc)
        return -self._forward(xh, tc, c) / (sigma * self.std)

    def map(self, x0, cond=None):
        """The generated physical point [n, dim] of source samples x0 (w2map; see source_to_model)."""
        self._require("map", ("w2map",))
        xh = _f32(self.source_to_model(x0))
        c = self._cond_rows(cond, xh.shape[0], normalised=False)
        if self.corrector:
            # a corrector (train.corrector): x0 is the first stage's sample, physical; the map adds f
            xh = _f32(self.normalise(x0))
            return self.denormalise(xh + self._forward(xh, 0.0, c))
        return self.denormalise(self._forward(xh, 0.0, c))

    def evaluate(self, x, t=None, cond=None, quantity=None, s=None):
        """One entry for every objective: quantity = velocity | score | map | network | start |
        average_velocity (meanflow, from time s to t) (default: map for w2map, else velocity).
        network takes normalised inputs (see network(); meanflow: t is s, and the gap 0)."""
        quantity = quantity or ("map" if self.objective == "w2map" else "velocity")
        if quantity == "map":
            return self.map(x, cond)
        if quantity == "start":
            return self.start(x)
        if quantity == "network":
            return self.network(x, 0.0 if t is None else t, cond)
        if t is None:
            raise ModelError(f"{quantity} needs a time t")
        if quantity == "velocity":
            return self.velocity(x, t, cond)
        if quantity == "score":
            return self.score(x, t, cond)
        if quantity == "average_velocity":
            if s is None:
                raise ModelError("average_velocity needs a start time s")
            return self.average_velocity(x, s, t, cond)
        raise ModelError(f"unknown quantity '{quantity}' (velocity | score | map | network | start | average_velocity)")

    def describe(self):
        """A few lines: architecture, objective, conditions, normalisation."""
        arch = f"{self.layers} x {self.hidden} {self.activation}, {self.time_features} time features"
        if self.time_inputs == 2:
            arch += " each for s and t - s"
        if self.film:
            arch += f", film (width {self.film_width})"
        cond = ", ".join(self.conditions) if self.conditions else "none"
        lines = [f"{self.path}: kinflow {self.kinflow_version} model, objective {self.objective}, dim {self.dim}, step {self.step}",
                 f"  network: {arch}",
                 f"  conditions: {cond}; source: {self.source}",
                 f"  mean {np.array2string(self.mean, precision=6)}  std {np.array2string(self.std, precision=6)}"]
        if self.objective == "tfm":
            lines.append(f"  time range [{self.time_origin:g}, {self.time_origin + self.time_scale:g}]")
        if self.objective == "dsm":
            lines.append(f"  VP beta [{self.beta_min:g}, {self.beta_max:g}], t up to 1 - {self.vp_eps:g}")
        return "\n".join(lines)


def load(path):
    """Read MODEL.h5; raises ModelError naming the file when it is missing, damaged or not a model."""
    return Model(path)


def read_points(path, snapshot=-1):
    """Rows [n, dim] from an .npy file or a kinflow HDF5 file's snapshot `position`."""
    path = str(path)
    if not os.path.exists(path):
        raise ModelError(f"'{path}': no such file")
    if path.endswith(".npy"):
        try:
            return np.load(path)
        except (OSError, ValueError) as e:
            raise ModelError(f"'{path}': not a .npy array ({e})") from None
    try:
        with h5py.File(path, "r") as f:
            snaps = sorted(f["snapshots"].keys())
            if not -len(snaps) <= snapshot < len(snaps):
                raise ModelError(f"'{path}': snapshot {snapshot} out of range ({len(snaps)} snapshots)")
            return f["snapshots"][snaps[snapshot]]["position"][()]
    except (OSError, KeyError) as e:
        raise ModelError(f"'{path}': not a kinflow HDF5 file with snapshots ({e})") from None


def _numbers(text):
    return None if text is None else [float(v) for v in text.split(",") if v.strip()]


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="kinflow_model.py",
        description="Evaluate a kinflow MODEL.h5 (written by kinflow-train, train.model_h5) with numpy. Without "
                    "--points: print the architecture. Points and results are physical coordinates (see the "
                    "module docstring; --quantity network takes normalised ones).")
    p.add_argument("model", help="MODEL.h5")
    p.add_argument("--points", help="input rows: FILE.npy [n, dim] or a kinflow HDF5 file (snapshot positions)")
    p.add_argument("--snapshot", type=int, default=-1, help="snapshot index of an HDF5 --points file (default -1: last)")
    p.add_argument("--quantity", choices=["velocity", "score", "map", "network", "start", "average_velocity"],
                   help="what to evaluate (default: map for w2map, velocity otherwise)")
    p.add_argument("--t", type=float, help="time: path time in [0, 1] (fm, otfm, dsm, meanflow) or physical time (tfm)")
    p.add_argument("--s", type=float, help="meanflow, --quantity average_velocity: the start time s <= t of the average")
    p.add_argument("--cond", help="comma list of raw condition values, in the model's order")
    p.add_argument("--out", help="save the result as .npy (default: print the rows)")
    args = p.parse_args(argv)
    try:
        m = load(args.model)
        if args.points is None:
            print(m.describe())
            return 0
        x = read_points(args.points, args.snapshot)
        y = m.evaluate(x, args.t, _numbers(args.cond), args.quantity, args.s)
        if args.out:
            np.save(args.out, y)
            print(f"kinflow_model.py: wrote {args.out} ({y.shape[0]} x {y.shape[1]})")
        else:
            np.savetxt(sys.stdout, y, fmt="%.9g")
    except (ModelError, ValueError) as e:
        print(f"kinflow_model.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
