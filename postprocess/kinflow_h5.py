#!/usr/bin/env python3
"""Shared helpers for reading kinflow HDF5 output files.

The kinflow HDF5 schema (one file per run):

* root attributes: ``kinflow_version`` (str), ``producer`` (str), ``deck``
  (str, the resolved INI input deck), ``seed`` (int64), ``mpi_ranks`` (int32),
  ``dim`` (int32);
* ``/snapshots/NNNNNN`` groups with attributes ``time`` / ``step`` and
  datasets ``position`` [N, dim], optional ``velocity`` [N, 3], ``id`` [N],
  optional ``species`` [N];
* ``/diagnostics/<name>`` float64 [n_outputs], always including ``time``.

Only numpy, h5py and scipy are used (scipy only for quadrature).
"""

import configparser
import math
import os

import numpy as np

try:  # h5py is only needed for file access; pure helpers work without it.
    import h5py
except ImportError:  # pragma: no cover - exercised only on broken installs
    h5py = None


class KinflowError(Exception):
    """Raised for missing / unreadable / non-kinflow files (clean CLI error)."""


# --------------------------------------------------------------------------
# small conversions
# --------------------------------------------------------------------------

def to_str(value):
    """Convert an HDF5 attribute value (str, bytes, numpy scalar/array) to str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        if value.shape == ():
            return to_str(value[()])
        if value.size == 1:
            return to_str(value.reshape(-1)[0])
        return ",".join(to_str(v) for v in value.reshape(-1))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def load_root_attrs(h5file):
    """All root attributes of an open h5py.File as a dict of str."""
    return {str(k): to_str(v) for k, v in h5file.attrs.items()}


# --------------------------------------------------------------------------
# deck parsing
# --------------------------------------------------------------------------

def parse_deck(text):
    """Parse the INI deck text into ``{section: {key: value}}`` (all str).

    Inline ``#`` / ``;`` comments (preceded by whitespace) are stripped,
    interpolation is disabled, keys are lower-cased, values stripped.  Keys
    that appear before any section header go into section ``""``.
    """
    if text is None:
        return {}
    text = to_str(text)

    def _parse(src):
        cp = configparser.ConfigParser(
            interpolation=None,
            inline_comment_prefixes=("#", ";"),
            comment_prefixes=("#", ";"),
            strict=False,
            empty_lines_in_values=False,
            default_section="\x00no-default\x00",
        )
        cp.read_string(src)
        return {
            sec: {k: v.strip() for k, v in cp.items(sec, raw=True)}
            for sec in cp.sections()
        }

    try:
        out = _parse(text)
    except configparser.MissingSectionHeaderError:
        out = _parse("[\x00root\x00]\n" + text)
        if "\x00root\x00" in out:
            out[""] = out.pop("\x00root\x00")
    return out


def deck_get(deck, section, key, default=None):
    """``deck[section][key]`` or *default* if absent (or empty string)."""
    value = deck.get(section, {}).get(key.lower())
    if value is None or value == "":
        return default
    return value


def parse_vector(value, dim, name="value"):
    """Parse a comma list (``"1,2,3"``) or a scalar, broadcast to length *dim*.

    Raises ValueError for a list whose length is neither 1 nor *dim*.
    """
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [float(v) for v in np.asarray(value, dtype=float).reshape(-1)]
    else:
        text = to_str(value).strip()
        if text == "":
            raise ValueError(f"{name}: empty value")
        parts = [float(p) for p in text.split(",") if p.strip() != ""]
    if len(parts) == 1:
        return np.full(int(dim), parts[0], dtype=float)
    if len(parts) != int(dim):
        raise ValueError(
            f"{name}: expected 1 or {dim} components, got {len(parts)}")
    return np.asarray(parts, dtype=float)


def deck_vector(deck, section, key, dim, default=None):
    """Vector parameter from the deck, broadcast to *dim* (or *default*)."""
    raw = deck_get(deck, section, key)
    if raw is None:
        if default is None:
            return None
        return parse_vector(default, dim, key)
    return parse_vector(raw, dim, f"[{section}] {key}")


# --------------------------------------------------------------------------
# file access
# --------------------------------------------------------------------------

def check_root_attrs_readable(path, seconds=10):
    """Read every root attribute of *path* in a child process first: a damaged file can crash
    (segfault) or hang the HDF5 library inside that read, where Python can neither catch nor
    interrupt it (the fuzz test found both, in a variable-length string's heap and an attribute
    header). Raises :class:`KinflowError` with one line when the child does not finish cleanly."""
    import subprocess
    import sys
    code = ("import sys, h5py\n"
            "with h5py.File(sys.argv[1], 'r') as f:\n"
            "    [f.attrs.get(k) for k in f.attrs]\n")
    try:
        r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise KinflowError(f"cannot read '{path}': its root attributes did not read within {seconds} s "
                           "(damaged file?)") from None
    if r.returncode < 0:
        raise KinflowError(f"cannot read '{path}': the HDF5 library crashed reading its root attributes "
                           "(damaged file?)")


def open_kinflow(path):
    """Open *path* read-only and check it looks like a kinflow file.

    Returns an open ``h5py.File``; raises :class:`KinflowError` with a
    one-line message otherwise.
    """
    if h5py is None:
        raise KinflowError("h5py is not available in this Python")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise KinflowError(f"cannot open '{path}': no such file")
    if os.path.isdir(path):
        raise KinflowError(f"cannot open '{path}': is a directory")
    try:
        is_h5 = h5py.is_hdf5(path)
    except Exception as exc:  # permissions etc.
        raise KinflowError(f"cannot open '{path}': {exc}") from None
    if not is_h5:
        raise KinflowError(f"'{path}' is not an HDF5 file")
    check_root_attrs_readable(path)
    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise KinflowError(f"cannot open '{path}': {exc}") from None
    if "kinflow_version" not in f.attrs:
        f.close()
        raise KinflowError(
            f"'{path}' is not a kinflow file "
            "(missing root attribute 'kinflow_version')")
    return f


def get_dim(h5file, deck=None):
    """Spatial dimension: root attr ``dim``, else deck, else first snapshot."""
    if "dim" in h5file.attrs:
        try:
            return int(np.asarray(h5file.attrs["dim"]).reshape(-1)[0])
        except (TypeError, ValueError):
            pass
    if deck:
        for sec in deck.values():
            if "dim" in sec:
                try:
                    return int(sec["dim"])
                except ValueError:
                    pass
    snaps = list_snapshots(h5file)
    if snaps:
        pos = h5file[snaps[0]["path"]]["position"]
        return 1 if pos.ndim == 1 else int(pos.shape[1])
    raise KinflowError("cannot determine the spatial dimension 'dim'")


def load_deck(h5file):
    """Parsed ``deck`` root attribute (``{}`` if absent)."""
    if "deck" not in h5file.attrs:
        return {}
    try:
        return parse_deck(to_str(h5file.attrs["deck"]))
    except configparser.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise KinflowError(f"cannot parse the 'deck' attribute: {first}") from None


def list_snapshots(h5file):
    """Snapshots sorted by index: list of dicts ``index, name, path, time, step``."""
    if "snapshots" not in h5file or not isinstance(h5file["snapshots"], h5py.Group):
        return []
    out = []
    for name, grp in h5file["snapshots"].items():
        if not isinstance(grp, h5py.Group):
            continue
        try:
            index = int(name)
        except ValueError:
            continue
        t = grp.attrs.get("time", np.nan)
        s = grp.attrs.get("step", -1)
        try:
            time, step = float(np.asarray(t).reshape(-1)[0]), int(np.asarray(s).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            raise KinflowError(f"snapshot {name}: attributes time = {t!r}, step = {s!r} are not numbers") from None
        out.append({
            "index": index,
            "name": name,
            "path": f"/snapshots/{name}",
            "time": time,
            "step": step,
        })
    out.sort(key=lambda d: d["index"])
    return out


def parse_snapshot_selection(text):
    """'0,5,-1' -> [0, 5, -1] (the plots' --snapshots); raises KinflowError on bad syntax."""
    try:
        sel = [int(p) for p in text.split(",") if p.strip() != ""]
    except ValueError:
        raise KinflowError(
            f"--snapshots: expected a comma list of integers, got '{text}'") from None
    if not sel:
        raise KinflowError("--snapshots: empty selection")
    return sel


def choose_snapshots(snaps, selection):
    """Resolve a --snapshots selection (None: first, middle and last) against the
    sorted snapshot list of :func:`list_snapshots`; negative entries count from
    the end. Raises KinflowError naming the available indices."""
    if selection is None:
        n = len(snaps)
        return [snaps[i] for i in sorted({0, (n - 1) // 2, n - 1})]
    by_index = {s["index"]: s for s in snaps}
    chosen = []
    for i in selection:
        if i < 0:
            if -i > len(snaps):
                raise KinflowError(
                    f"--snapshots: {i} is out of range ({len(snaps)} snapshots)")
            s = snaps[i]
        elif i in by_index:
            s = by_index[i]
        else:
            raise KinflowError(
                f"--snapshots: no snapshot {i} (available indices "
                f"{snaps[0]['index']}..{snaps[-1]['index']}, {len(snaps)} snapshots)")
        if s not in chosen:
            chosen.append(s)
    return chosen


def read_positions(h5file, snapshot, dim=None):
    """``position`` of a snapshot (dict from :func:`list_snapshots` or path)
    as a float array of shape [N, dim]."""
    path = snapshot["path"] if isinstance(snapshot, dict) else snapshot
    grp = h5file[path]
    if "position" not in grp:
        raise KinflowError(f"snapshot {path} has no 'position' dataset")
    pos = read_numeric(grp["position"], f"snapshot {path}: 'position'", (1, 2))
    if pos.size and not np.nanmax(np.where(np.isfinite(pos), np.abs(pos), 0.0)) <= 1e150:
        raise KinflowError(f"snapshot {path}: 'position' holds values beyond 1e150 (damaged file?)")
    if pos.ndim == 1:
        pos = pos.reshape(-1, 1) if (dim in (None, 1)) else pos.reshape(-1, dim)
    return pos


def physical_memory():
    """Bytes of memory of this machine (inf when unknown)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return math.inf


def read_numeric(ds, what, ndims=(1, 2)):
    """A numeric dataset as a float array, or KinflowError naming `what`: not a dataset, not
    numbers, the wrong number of dimensions, or more values than this machine's memory holds."""
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu" or ds.ndim not in ndims:
        shape, dtype = (ds.shape, ds.dtype) if isinstance(ds, h5py.Dataset) else ("-", "group")
        raise KinflowError(f"{what} is not a numeric {' or '.join(f'{n}-D' for n in ndims)} dataset "
                           f"(shape {shape}, dtype {dtype})")
    if 8.0 * ds.size > physical_memory():
        raise KinflowError(f"{what} has shape {ds.shape}: more values than this machine's memory holds")
    return np.asarray(ds[()], dtype=float)


def read_diagnostics(h5file):
    """``/diagnostics`` datasets as ``{name: 1-D float array}`` ({} if absent)."""
    if "diagnostics" not in h5file or not isinstance(h5file["diagnostics"], h5py.Group):
        return {}
    out = {}
    for name, ds in h5file["diagnostics"].items():
        if isinstance(ds, h5py.Dataset):
            out[name] = read_numeric(ds, f"/diagnostics/{name}", (0, 1)).reshape(-1)
    return out


def default_output(input_path, suffix):
    """``run.h5`` -> ``run<suffix>`` (e.g. ``run_moments.png``)."""
    root, _ = os.path.splitext(os.fspath(input_path))
    return root + suffix


# --------------------------------------------------------------------------
# exact reference solutions
# --------------------------------------------------------------------------

def is_ou_deck(deck):
    """True for an overdamped, harmonic-potential, gaussian-init Langevin deck."""
    lv = deck.get("langevin", {})
    return (lv.get("dynamics", "").lower() == "overdamped"
            and lv.get("potential", "").lower() == "harmonic"
            and lv.get("init", "").lower() == "gaussian")


def is_double_well_deck(deck):
    return deck.get("langevin", {}).get("potential", "").lower() == "double_well"


def ou_params(deck, dim):
    """Per-component OU parameters from a deck: dict of arrays of length dim
    (``theta, kappa, D, c, mu0, sigma0``)."""
    sec = "langevin"
    interaction = (deck_get(deck, sec, "interaction", "none") or "none").lower()
    if interaction == "harmonic":
        kappa = deck_vector(deck, sec, "interaction_strength", dim, default="0")
    else:
        kappa = np.zeros(dim)
    return {
        "theta": deck_vector(deck, sec, "stiffness", dim, default="1"),
        "kappa": kappa,
        "D": deck_vector(deck, sec, "temperature", dim, default="1"),
        "c": deck_vector(deck, sec, "center", dim, default="0"),
        "mu0": deck_vector(deck, sec, "init_mean", dim, default="0"),
        "sigma0": deck_vector(deck, sec, "init_std", dim, default="1"),
    }


def ou_exact(t, theta, D, c, mu0, sigma0, kappa=0.0):
    """Exact mean and variance of (mean-field) overdamped OU, one component.

    dX = -theta (X - c) dt - kappa (X - E X) dt + sqrt(2 D) dW,
    X_0 ~ N(mu0, sigma0^2):

        E X_t   = c + exp(-theta t) (mu0 - c)
        Var X_t = exp(-2 lam t) sigma0^2 + D/lam (1 - exp(-2 lam t)),
        lam = theta + kappa   (lam -> 0: sigma0^2 + 2 D t).

    Returns ``(mean, var)`` as arrays broadcast against *t*.
    """
    t = np.asarray(t, dtype=float)
    theta = float(theta)
    kappa = float(kappa)
    D = float(D)
    mean = c + np.exp(-theta * t) * (mu0 - c)
    lam = theta + kappa
    if abs(lam) < 1e-300:
        var = sigma0 ** 2 + 2.0 * D * t
    else:
        # D/lam (1 - e^{-2 lam t}) = -D expm1(-2 lam t)/lam, stable for small lam
        var = np.exp(-2.0 * lam * t) * sigma0 ** 2 - D * np.expm1(-2.0 * lam * t) / lam
    mean, var = np.broadcast_arrays(mean, var)
    return np.array(mean, dtype=float), np.array(var, dtype=float)


def double_well_potential(x, stiffness):
    """V(x) = stiffness * (x^2 - 1)^2 (one component)."""
    x = np.asarray(x, dtype=float)
    return stiffness * (x * x - 1.0) ** 2


def gibbs_double_well(x, stiffness, temperature):
    """Normalised stationary density exp(-V/T)/Z of the 1-D double well.

    Z is computed by adaptive quadrature over a range where the integrand
    is negligible outside.  Returns None if temperature <= 0 or
    stiffness < 0 (not normalisable / degenerate).
    """
    from scipy import integrate

    k = float(stiffness)
    T = float(temperature)
    if not (T > 0.0) or not (k >= 0.0) or not math.isfinite(k) or not math.isfinite(T):
        return None
    if k == 0.0:
        return None  # flat potential: not normalisable

    def f(y):
        return math.exp(-k * (y * y - 1.0) ** 2 / T)

    # outside |y| > L the exponent exceeds 60 (integrand < 1e-26)
    L = math.sqrt(1.0 + math.sqrt(60.0 * T / k)) + 1.0
    Z, _ = integrate.quad(f, -L, L, points=[-1.0, 0.0, 1.0], limit=200)
    x = np.asarray(x, dtype=float)
    return np.exp(-double_well_potential(x, k) / T) / Z


# --------------------------------------------------------------------------
# command-line helpers
# --------------------------------------------------------------------------

def cli_error(prog, message, code=2):
    """Print one argparse-style error line to stderr and exit with *code*."""
    import sys
    msg = " ".join(str(message).split())  # keep it on one line
    sys.stderr.write(f"{prog}: error: {msg}\n")
    sys.exit(code)


def cli_warn(prog, message):
    import sys
    msg = " ".join(str(message).split())
    sys.stderr.write(f"{prog}: warning: {msg}\n")


def component_sort_key(name):
    """Sort ``mean_10`` after ``mean_2``."""
    base, _, idx = name.rpartition("_")
    if base and idx.isdigit():
        return (base, int(idx), "")
    return (name, -1, name)
