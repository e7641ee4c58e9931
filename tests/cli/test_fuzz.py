"""Fuzz test (issue 15): every shipped deck (inputs/*.ini) mutated -- deleted and duplicated keys,
swapped types, extreme and non-finite numbers, huge counts, unknown sections and keys, binary
garbage, truncated files -- and run through its driver; small kinflow HDF5 files (and model files)
truncated, bit-flipped and restructured with h5py, fed to kinflow-simulate (init = file),
kinflow-train, kinflow-sample, kinflow-generate (damaged MODEL.h5), kinflow-compare and the
postprocess scripts. Every case must exit 0 or 1 (a Python script 0, 1 or 2: argparse's code)
within TIMEOUT seconds, a failure must print
exactly one line on stderr (no Python traceback), and no failed case may leave an output under
its final name or a FILE.tmp (FILE.incomplete, the partial output of a run-time failure, and
kinflow-train's resume state MODEL.ckpt / MODEL.loss.csv are allowed).

Deterministic: the cases are drawn from random.Random(SEED). Cheap: the drivers run without
mpiexec (MPI singleton), two at a time, and command-line overrides shrink every run (steps,
particles, network size) except for the key a mutation targets, so the huge-count mutations do
reach the drivers. `python3 tests/cli/test_fuzz.py` runs the whole set and prints the counts.
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
DRIVERS = BUILD / "drivers"
SIMULATE, TRAIN, SAMPLE, COMPARE = (DRIVERS / n for n in ("kinflow-simulate", "kinflow-train", "kinflow-sample",
                                                          "kinflow-compare"))
GENERATE = DRIVERS / "kinflow-generate"
PY = sys.executable
POST = SRC / "postprocess"
# One process per case (MPI singleton, no mpiexec); Open MPI's start-up shrinks from ~0.7 s to
# ~0.15 s without the orted it spawns for a singleton and without probing the UCX/OFI transports.
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", KOKKOS_DISABLE_WARNINGS="1",
           OMP_NUM_THREADS="1", MPLBACKEND="Agg", OMPI_MCA_ess_singleton_isolated="1", OMPI_MCA_pml="ob1",
           OMPI_MCA_btl="self", OMPI_MCA_mtl="^ofi", OMPI_MCA_coll="^hcoll")

SEED = 15          # the number
WORKERS = 2        # the CI machine's cores
TIMEOUT = 20       # seconds per case: a hang is a failure
PER_DECK = {"simulate": 40, "train": 10, "sample": 10, "pipeline": 8}
# How often a consumer of a corrupted HDF5 file is drawn, by its cost (CPU seconds per case:
# kinflow-simulate/compare ~0.15, a plot ~1, LibTorch drivers ~1.3, report.py ~2.5).
WEIGHT = {"train": 0.3, "sample": 0.3, "plot_moments": 0.35, "plot_density": 0.35, "plot_ks": 0.35,
          "plot_dsmc": 0.35, "report": 0.15}

# ---- value pools --------------------------------------------------------------------------------

SWAPPED = ["abc", "true", "no", "", "1,2,3,4,5", ",", "[x]", "=", '"3"', "'q'", "\u00e9t\u00e9", "\U0001F600", "\\",
           "%s%n", "$(id)", "0,,1", "-", ".", "1.5", "0x10", "1e3", "3 4", "builtin:", "snapshot:x", "a/b/c"]  # no absolute path: a case writes only in its directory
EXTREME = ["0", "-1", "-0", "1e308", "-1e308", "1e-308", "5e-324", "2147483648", "-2147483649", "9223372036854775807",
           "9223372036854775808", "-9223372036854775809", "1e400", "0x1p3", "+7", "007", "1e-30", "-1e-300"]
NONFINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "-nan", "1e999", "-1e999", "nan,nan", "1,inf", "0,nan,0"]
# Counts that size memory: in range for the validation (2^40 particles) or beyond it.
HUGE_MEMORY = ["1099511627776", "1000000000000", "17179869184", "4294967296", "9223372036854775807", "1e12", "-1"]
# Counts that size time (steps, network evaluations): beyond every bound, so a run that starts is a bug.
HUGE_TIME = ["2199023255552", "9223372036854775807", "18446744073709551616", "1e12", "-1"]
TIME_KEYS = {"steps", "nfe"}
COUNT_KEYS = {"particles", "count", "builtin_size", "batch_size", "batch", "hidden", "layers", "film_width",
              "mesh_cells", "modes", "time_features", "every", "checkpoint_every", "shuffle_every",
              "blowup_check_every", "warmup", "stop_after", "parts_per_batch", "threads", "seed"} | TIME_KEYS
NEVER_ADD = {"run.kill_at_step", "run.kill_signal"}  # test hooks that stop a run with a signal on purpose


def driver_of(deck):
    name = deck.name
    for prefix, kind in (("train_", "train"), ("sample_", "sample"), ("pipeline_", "pipeline")):
        if name.startswith(prefix):
            return kind
    return "simulate"


# ---- cases --------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    argv: list
    cwd: Path
    outputs: list = field(default_factory=list)  # final names that must not exist after a failure
    script: bool = False                          # a Python script: exit 0, 1 or 2
    prog: str = ""                                # the error line starts with "PROG: error"


@dataclass
class Result:
    case: Case
    rc: int = 0
    stderr: str = ""
    seconds: float = 0.0
    timed_out: bool = False


def run_case(case):
    t0 = time.perf_counter()
    # Each case its own Open MPI session directory: isolated singletons share one job id, and one
    # that exits removes the shared directory under the others.
    session = case.cwd / ".mpi"
    session.mkdir(exist_ok=True)
    env = dict(ENV, OMPI_MCA_orte_tmpdir_base=str(session))
    try:
        r = subprocess.run([str(a) for a in case.argv], cwd=case.cwd, capture_output=True, env=env, timeout=TIMEOUT)
        return Result(case, r.returncode, r.stderr.decode("utf-8", "replace"), time.perf_counter() - t0)
    except subprocess.TimeoutExpired as e:
        return Result(case, -999, (e.stderr or b"").decode("utf-8", "replace"), time.perf_counter() - t0, True)


def problems(res):
    """What is wrong with one finished case (empty: nothing)."""
    c, out = res.case, []
    if res.timed_out:
        return [f"no exit within {TIMEOUT} s"]
    ok_codes = (0, 1, 2) if c.script else (0, 1)
    if res.rc not in ok_codes:
        out.append(f"exit {res.rc}" + (" (signal)" if res.rc < 0 else ""))
    if "Traceback (most recent call last)" in res.stderr:
        out.append("Python traceback")
    if res.rc != 0:
        lines = [l for l in res.stderr.split("\n") if l.strip()]
        if len(lines) != 1:
            out.append(f"{len(lines)} lines on stderr")
        elif c.prog and not lines[0].startswith(c.prog + ": error"):
            out.append(f"error line does not start with '{c.prog}: error'")
        for f in c.outputs:
            if Path(f).exists():
                out.append(f"left {Path(f).name}")
    left_tmp = [p.name for p in c.cwd.rglob("*.tmp")]
    if left_tmp:
        out.append(f"left {', '.join(left_tmp)}")
    return out


def run_all(cases):
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(run_case, cases))


def report(results):
    bad = [(r, p) for r in results for p in [problems(r)] if p]
    lines = [f"{r.case.name}: {'; '.join(p)} | {' '.join(map(str, r.case.argv))} | "
             f"{r.stderr.strip()[-400:]!r}" for r, p in bad]
    return bad, "\n".join(lines[:40]) + (f"\n... and {len(lines) - 40} more" if len(lines) > 40 else "")


# ---- deck mutations -----------------------------------------------------------------------------

KEY_LINE = re.compile(rb"^\s*([A-Za-z_][\w.]*)\s*=\s*(.*?)\s*$")
SECTION_LINE = re.compile(rb"^\s*\[([^\]]*)\]")


def key_lines(lines):
    """(line index, 'section.key', value) of every key line."""
    out, section = [], ""
    for i, line in enumerate(lines):
        m = SECTION_LINE.match(line)
        if m:
            section = m.group(1).decode("utf-8", "replace").strip()
            continue
        m = KEY_LINE.match(line)
        if m:
            out.append((i, f"{section}.{m.group(1).decode()}", m.group(2)))
    return out


def for_key(key, pool):
    """`pool` without the values that would make `key` a valid but long run: a steps or nfe count
    in range (up to 2^40) is a legitimate request for hours of work, not a bug."""
    if key.rsplit(".", 1)[-1] not in TIME_KEYS:
        return pool
    def long_run(v):
        try:
            return 1000 < int(v) <= 2**40
        except ValueError:
            return False
    return [v for v in pool if not long_run(v)]


def value_for(rng, key):
    """A bad value for `key`: extreme, non-finite, swapped type or (counts) huge."""
    name = key.rsplit(".", 1)[-1]
    pools = [EXTREME, NONFINITE, SWAPPED]
    if name in COUNT_KEYS:
        pools.append(HUGE_TIME if name in TIME_KEYS else HUGE_MEMORY)
    return rng.choice(for_key(key, rng.choice(pools)))


def mutate_deck(rng, text, known):
    """(mutation, targeted key or None, new deck bytes)."""
    lines = text.split(b"\n")
    keys = key_lines(lines)
    kind = rng.choices(["delete", "duplicate", "swap", "extreme", "nonfinite", "huge", "add_known", "unknown_section",
                        "unknown_key", "garbage", "truncate", "malformed"],
                       weights=[2, 2, 3, 3, 3, 3, 5, 1, 1, 2, 2, 2])[0]
    if kind in ("delete", "duplicate", "swap", "extreme", "nonfinite") and keys:
        i, key, value = rng.choice(keys)
        name = key.split(".", 1)[1].encode()
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i + 1, name + b" = " + (value if rng.random() < 0.5 else value_for(rng, key).encode()))
        else:
            pool = {"swap": SWAPPED, "extreme": EXTREME, "nonfinite": NONFINITE}[kind]
            lines[i] = name + b" = " + rng.choice(for_key(key, pool)).encode()
        return kind, key, b"\n".join(lines)
    if kind == "huge":
        counts = [k for k in keys if k[1].rsplit(".", 1)[-1] in COUNT_KEYS]
        if counts:
            i, key, _ = rng.choice(counts)
            pool = HUGE_TIME if key.rsplit(".", 1)[-1] in TIME_KEYS else HUGE_MEMORY
            lines[i] = key.split(".", 1)[1].encode() + b" = " + rng.choice(pool).encode()
            return kind, key, b"\n".join(lines)
        kind = "add_known"
    if kind in ("add_known", "huge", "delete", "duplicate", "swap", "extreme", "nonfinite") and known:
        key = rng.choice(sorted(known))
        section, name = key.split(".", 1)
        lines += [f"[{section}]".encode(), f"{name} = {value_for(rng, key)}".encode()]
        return "add_known", key, b"\n".join(lines)
    if kind == "unknown_section":
        at = rng.randrange(len(lines) + 1)
        lines[at:at] = [b"[" + rng.choice([b"bogus", b"run.sub", b"", b" ", b"RUN", b"train.fm"]) + b"]", b"x = 1"]
        return kind, None, b"\n".join(lines)
    if kind == "unknown_key":
        at = rng.randrange(len(lines) + 1)
        lines.insert(at, rng.choice([b"bogus = 1", b"run.steps = 2", b"Steps = 2", b"dt2 = 1", b"a.b.c = 3"]))
        return kind, None, b"\n".join(lines)
    if kind == "garbage":
        junk = bytes(rng.randrange(256) for _ in range(rng.choice([1, 8, 64, 512])))
        if rng.random() < 0.25:
            return kind, None, junk
        at = rng.randrange(len(text) + 1)
        return kind, None, text[:at] + junk + text[at:]
    if kind == "truncate":
        return kind, None, text[:rng.randrange(len(text) + 1)]
    variants = [b"", b"\xef\xbb\xbf" + text, text.replace(b"=", b"", 1), text.replace(b"]", b"", 1),
                text + b"\n= 3\n", text + b"\n[run]\nseed = " + b"9" * 100000 + b"\n", text.replace(b"\n", b"\r\n"),
                text.replace(b"\n", b"\x00\n", 3), b"[run]\n" * 1000]
    return "malformed", None, rng.choice(variants)


def known_keys(exe):
    """`section.key` of every key `exe --help` lists."""
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    keys, section = set(), None
    for line in r.stdout.splitlines():
        m = re.match(r"^\[([\w.]+)\]", line)
        if m:
            section = m.group(1)
        m = re.match(r"^  (\w+) = ", line)
        if m and section:
            keys.add(f"{section}.{m.group(1)}")
    return keys - NEVER_ADD


def override_args(overrides, target):
    return [f"--{k}={v}" for k, v in overrides.items() if k != target]


def deck_cases(rng, root, base):
    """Mutated copies of every shipped deck, each with its driver's command line."""
    known = {"simulate": known_keys(SIMULATE)}
    if TRAIN.exists():
        known["train"], known["sample"] = known_keys(TRAIN), known_keys(SAMPLE)
    cases = []
    for deck in sorted((SRC / "inputs").glob("*.ini")):
        kind = driver_of(deck)
        if kind in ("train", "sample") and not TRAIN.exists():
            continue
        text = deck.read_bytes()
        for n in range(PER_DECK[kind]):
            mutation, target, body = mutate_deck(rng, text, known.get(kind, set()))
            name = f"deck/{deck.stem}/{n:02d}-{mutation}" + (f"-{target}" if target else "")
            work = root / "deck" / deck.stem / f"{n:02d}"
            work.mkdir(parents=True)
            path = work / deck.name
            path.write_bytes(body)
            if kind == "simulate":
                out = work / "out" / "run.h5"
                over = {"run.steps": 3, "langevin.particles": 50, "ks.particles": 50, "dsmc.particles": 50,
                        "ks.mesh_cells": 32, "output.file": out}
                cases.append(Case(name, [SIMULATE, path, "--quiet", *override_args(over, target)], work, [out],
                                  prog="kinflow-simulate"))
            elif kind == "train":
                model = work / "out" / "model.pt"
                over = {"train.steps": 3, "train.builtin_size": 200, "train.batch_size": 32, "train.hidden": 16,
                        "train.layers": 2, "train.film_width": 8, "train.model_file": model}
                if "langevin" in deck.name:
                    over["train.data"] = base["lang"]
                cases.append(Case(name, [TRAIN, path, "--quiet", *override_args(over, target)], work, [model],
                                  prog="kinflow-train"))
            elif kind == "sample":
                out = work / "out" / "samples.h5"
                model = base["model_dsm" if "dsm" in deck.name else "model_snap" if "langevin" in deck.name else "model_fm"]
                over = {"sample.model_file": model, "sample.nfe": 4, "output.file": out}
                if "langevin" not in deck.name:
                    over["sample.count"] = 50
                cases.append(Case(name, [SAMPLE, path, "--quiet", *override_args(over, target)], work, [out],
                                  prog="kinflow-sample"))
            else:  # the pipeline runner checks its deck, then stops: no drivers in --build
                cases.append(Case(name, [PY, SRC / "pipeline" / "kinflow_pipeline.py", path, "--out", work / "run",
                                         "--build", work / "no-build", "--quiet", "--no-report"], work,
                                  [work / "run" / "summary.json"], script=True, prog="kinflow-pipeline"))
    return cases


# ---- HDF5 and model-file corruption -------------------------------------------------------------

def byte_mutations(rng, data):
    """(name, bytes) corruptions of a whole file."""
    n = len(data)
    out = [("empty", b""), ("text", b"[run]\nsteps = 3\n"), ("random", bytes(rng.randrange(256) for _ in range(4096)))]
    for k in range(4):
        cut = rng.randrange(1, n)
        out.append((f"truncate{k}@{cut}", data[:cut]))
    out.append(("truncate-header", data[:rng.randrange(8, 600)]))
    for flips in (1, 16, 256):
        b = bytearray(data)
        for _ in range(flips):
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        out.append((f"flip{flips}", bytes(b)))
    b = bytearray(data)
    b[:96] = bytes(96)
    out.append(("zero-superblock", bytes(b)))
    b = bytearray(data)
    at = rng.randrange(n)
    b[at:at + 512] = bytes(len(b[at:at + 512]))
    out.append((f"zero-block@{at}", bytes(b)))
    out.append(("appended-junk", data + bytes(rng.randrange(256) for _ in range(1000))))
    return out


def first_snap(f):
    return f["snapshots"][sorted(f["snapshots"])[0]]


def last_snap(f):
    return f["snapshots"][sorted(f["snapshots"])[-1]]


def replace(group, name, value, **kw):
    if name in group:
        del group[name]
    group.create_dataset(name, data=value, **kw)


def structure_mutations():
    """(name, function(h5py.File)) restructurings of a valid kinflow file."""
    def every(fn):
        return lambda f: [fn(f["snapshots"][s]) for s in sorted(f["snapshots"])]

    def pos(f, s=None):
        return np.asarray((s or last_snap(f))["position"])

    def huge(g, name, rows, cols):
        if name in g:
            del g[name]
        g.create_dataset(name, shape=(rows, cols) if cols else (rows,), dtype="f8" if cols else "i8",
                         chunks=(1024, cols) if cols else (1024,))

    m = {
        "no-snapshots": lambda f: f.__delitem__("snapshots"),
        "empty-snapshots": lambda f: [f["snapshots"].__delitem__(s) for s in list(f["snapshots"])],
        "snapshots-dataset": lambda f: (f.__delitem__("snapshots"), f.create_dataset("snapshots", data=[1, 2])),
        "snapshot-not-group": lambda f: (f["snapshots"].__delitem__(sorted(f["snapshots"])[-1]),
                                         f["snapshots"].create_dataset("999999", data=[1.0])),
        "odd-snapshot-name": lambda f: f["snapshots"].move(sorted(f["snapshots"])[-1], "zz"),
        "no-position": every(lambda g: g.__delitem__("position")),
        "no-id": every(lambda g: g.__delitem__("id")),
        "position-1d": every(lambda g: replace(g, "position", np.asarray(g["position"])[:, 0])),
        "position-3d": every(lambda g: replace(g, "position", np.asarray(g["position"])[:, :, None])),
        "position-0cols": every(lambda g: replace(g, "position", np.zeros((g["position"].shape[0], 0)))),
        "position-7cols": every(lambda g: replace(g, "position", np.ones((g["position"].shape[0], 7)))),
        "position-int": every(lambda g: replace(g, "position", np.asarray(g["position"]).astype(np.int32))),
        "position-float32": every(lambda g: replace(g, "position", np.asarray(g["position"]).astype(np.float32))),
        "position-string": every(lambda g: replace(g, "position", np.full(g["position"].shape, b"x", dtype="S3"))),
        "position-compound": every(lambda g: replace(g, "position", np.zeros(g["position"].shape[0],
                                                                             dtype=[("a", "f8"), ("b", "i4")]))),
        "position-nan": every(lambda g: replace(g, "position", np.full(g["position"].shape, np.nan))),
        "position-inf": lambda f: replace(last_snap(f), "position", np.where(pos(f) > 0, np.inf, pos(f))),
        "position-huge-values": every(lambda g: replace(g, "position", np.full(g["position"].shape, 1e308))),
        "position-empty": every(lambda g: (replace(g, "position", np.zeros((0, g["position"].shape[1]))),
                                           replace(g, "id", np.zeros(0, dtype=np.int64)))),
        "position-short": every(lambda g: replace(g, "position", np.asarray(g["position"])[:-3])),
        "position-scalar": every(lambda g: replace(g, "position", 1.0)),
        "position-huge-rows": every(lambda g: huge(g, "position", 1 << 40, g["position"].shape[1])),
        "position-huge-rows-34": every(lambda g: (huge(g, "position", 1 << 34, g["position"].shape[1]),
                                                  huge(g, "id", 1 << 34, 0))),
        "id-2d": every(lambda g: replace(g, "id", np.stack([np.asarray(g["id"])] * 3, axis=1))),
        "id-float": every(lambda g: replace(g, "id", np.asarray(g["id"]).astype(float) + 0.5)),
        "id-short": every(lambda g: replace(g, "id", np.asarray(g["id"])[:-2])),
        "id-shuffled": lambda f: replace(last_snap(f), "id", np.asarray(last_snap(f)["id"])[::-1]),
        "id-huge": every(lambda g: replace(g, "id", np.full(g["id"].shape, 2**62, dtype=np.int64))),
        "velocity-2cols": every(lambda g: replace(g, "velocity", np.ones((g["position"].shape[0], 2)))),
        "velocity-9cols": every(lambda g: replace(g, "velocity", np.ones((g["position"].shape[0], 9)))),
        "velocity-1d": every(lambda g: replace(g, "velocity", np.ones(g["position"].shape[0]))),
        "velocity-short": every(lambda g: replace(g, "velocity", np.ones((max(g["position"].shape[0] - 5, 0), 3)))),
        "velocity-nan": every(lambda g: replace(g, "velocity", np.full((g["position"].shape[0], 3), np.nan))),
        "species-bad": every(lambda g: replace(g, "species", np.full(g["position"].shape[0], 99, dtype=np.int32))),
        "species-negative": every(lambda g: replace(g, "species", np.full(g["position"].shape[0], -1, dtype=np.int32))),
        "species-2d": every(lambda g: replace(g, "species", np.zeros((g["position"].shape[0], 2), dtype=np.int32))),
        "species-float": every(lambda g: replace(g, "species", np.zeros(g["position"].shape[0]) + 0.5)),
        "dim-0": lambda f: f.attrs.__setitem__("dim", np.int32(0)),
        "dim-negative": lambda f: f.attrs.__setitem__("dim", np.int32(-3)),
        "dim-huge": lambda f: f.attrs.__setitem__("dim", np.int64(2**40)),
        "dim-wrong": lambda f: f.attrs.__setitem__("dim", np.int32(3 if pos(f).shape[1] != 3 else 1)),
        "dim-string": lambda f: f.attrs.__setitem__("dim", "two"),
        "dim-float": lambda f: f.attrs.__setitem__("dim", 2.5),
        "dim-array": lambda f: f.attrs.__setitem__("dim", np.array([2, 2], dtype=np.int32)),
        "no-dim": lambda f: f.attrs.__delitem__("dim"),
        "no-producer": lambda f: f.attrs.__delitem__("producer"),
        "producer-int": lambda f: f.attrs.__setitem__("producer", 7),
        "no-deck": lambda f: f.attrs.__delitem__("deck") if "deck" in f.attrs else None,
        "deck-garbage": lambda f: f.attrs.__setitem__("deck", np.void(bytes(range(256)))),
        "deck-binary-string": lambda f: f.attrs.__setitem__("deck", "[langevin\n\x00\x01=\n[ks]\nchi = nan\n= 1"),
        "deck-int": lambda f: f.attrs.__setitem__("deck", 5),
        "time-string": every(lambda g: g.attrs.__setitem__("time", "noon")),
        "time-nan": every(lambda g: g.attrs.__setitem__("time", np.nan)),
        "time-decreasing": lambda f: [f["snapshots"][s].attrs.__setitem__("time", -float(i))
                                      for i, s in enumerate(sorted(f["snapshots"]))],
        "no-time": every(lambda g: g.attrs.__delitem__("time")),
        "no-step": every(lambda g: g.attrs.__delitem__("step") if "step" in g.attrs else None),
        "no-diagnostics": lambda f: f.__delitem__("diagnostics") if "diagnostics" in f else None,
        "diagnostics-garbage": lambda f: [replace(f["diagnostics"], k, np.full((2, 2), b"zz", dtype="S2"))
                                          for k in list(f.get("diagnostics", {}))],
        "diagnostics-nan": lambda f: [replace(f["diagnostics"], k, np.full(f["diagnostics"][k].shape, np.nan))
                                      for k in list(f.get("diagnostics", {}))],
        "diagnostics-short": lambda f: [replace(f["diagnostics"], k, np.asarray(f["diagnostics"][k])[:1])
                                        for k in list(f.get("diagnostics", {}))],
        "one-row": every(lambda g: [replace(g, k, np.asarray(g[k])[:1]) for k in list(g)]),
    }
    return sorted(m.items())


def corrupted_files(rng, root, path):
    """Corrupted copies of `path` (a kinflow HDF5 file): [(name, file)]."""
    out = []
    d = root / "h5" / path.stem
    d.mkdir(parents=True)
    for name, data in byte_mutations(rng, path.read_bytes()):
        p = d / f"{name.split('@')[0]}.h5"
        p.write_bytes(data)
        out.append((name, p))
    for name, fn in structure_mutations():
        p = d / f"{name}.h5"
        shutil.copyfile(path, p)
        try:
            with h5py.File(p, "r+") as f:
                fn(f)
        except (KeyError, IndexError, ValueError, TypeError):
            p.unlink()
            continue  # does not apply to this file (e.g. no velocity)
        out.append((name, p))
    return out


def write_ini(path, sections):
    path.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for s, keys in sections.items()))
    return path


def h5_cases(rng, root, base):
    """Drivers and scripts on corrupted copies of the base files."""
    cases = []

    def work(tag):
        w = root / "run" / tag
        w.mkdir(parents=True)
        return w

    targets = {  # base file -> (consumers of every corrupted copy, consumers to draw from, how many)
        "lang": (["compare-a"], ["compare-b", "train-pair", "train-cond", "sim-langevin", "plot_moments",
                                 "plot_density", "report", "sample-source"], 2),
        "ks": (["compare-a"], ["train-gauss", "sim-ks", "plot_ks"], 1),
        "dsmc": ([], ["compare-b", "sim-dsmc", "plot_dsmc"], 1),
        "samples": ([], ["compare-a", "plot_density", "train-gauss"], 1),
    }
    for key, (always, others, k) in targets.items():
        for mut, bad in corrupted_files(rng, root, base[key]):
            pool, drawn = list(others), []
            for _ in range(k):  # by cost: a LibTorch start ~1.3 s, a plot ~1 s, report.py ~2.5 s
                who = rng.choices(pool, weights=[WEIGHT.get(w.split("-")[0], 1.0) for w in pool])[0]
                pool.remove(who)
                drawn.append(who)
            for who in always + drawn:
                tag = f"{key}-{mut.split('@')[0]}-{who}"
                name = f"h5/{tag}"
                w = work(tag)
                if who.startswith("compare"):
                    a, b = (bad, base["lang"]) if who == "compare-a" else (base["lang"], bad)
                    if who == "compare-b":  # --save-attrs writes into B: a copy
                        b = w / "b.h5"
                        shutil.copyfile(bad, b)
                    js, interp = w / "m.json", w / "interp.h5"
                    argv = [COMPARE, a, b, "--max-points=40", "--projections=8", "--bootstrap=2", f"--json={js}",
                            f"--interpolate-out={interp}", "--interpolate=0.5"] + (["--save-attrs"] if who == "compare-b" else [])
                    cases.append(Case(name, argv, w, [js, interp], prog="kinflow-compare"))
                elif who.startswith("train"):
                    if not TRAIN.exists():
                        continue
                    model = w / "out" / "model.pt"
                    t = {"objective": "fm", "data": bad, "snapshot": -1, "source": "gaussian", "hidden": 8, "layers": 1,
                         "batch_size": 16, "steps": 2, "model_file": model}
                    if who == "train-pair":
                        t["source"] = "snapshot:0"
                    if who == "train-cond":
                        t.update(snapshot="0,-1", condition="time,langevin.temperature", condition_embedding="film",
                                 film_width=4)
                    deck = write_ini(w / "train.ini", {"run": {"seed": 1}, "train": t})
                    cases.append(Case(name, [TRAIN, deck, "--quiet"], w, [model], prog="kinflow-train"))
                elif who == "sample-source":
                    if not TRAIN.exists():
                        continue
                    out = w / "out" / "s.h5"
                    deck = write_ini(w / "sample.ini", {"sample": {"model_file": base["model_snap"], "count": 0,
                                                                   "nfe": 4, "source_file": bad}, "output": {"file": out}})
                    cases.append(Case(name, [SAMPLE, deck, "--quiet"], w, [out], prog="kinflow-sample"))
                elif who.startswith("sim-"):
                    engine = who[4:]
                    out = w / "out" / "run.h5"
                    sec = {"init": "file", "init_file": bad}
                    if engine == "ks":
                        sec.update(dim=2, mass=1, delta=0.5)
                    deck = write_ini(w / "sim.ini", {"run": {"engine": engine, "steps": 2, "dt": 0.001},
                                                     "output": {"file": out}, engine: sec})
                    cases.append(Case(name, [SIMULATE, deck, "--quiet"], w, [out], prog="kinflow-simulate"))
                elif who == "report":
                    run_dir = fake_run_dir(w / "pipe", bad, base["samples"])
                    outs = [run_dir / n for n in ("densities.png", "loss.png", "metrics.png", "report.png", "report.html")]
                    cases.append(Case(name, [PY, POST / "report.py", run_dir, "--quiet"], w, outs, script=True,
                                      prog="report.py"))
                else:
                    png = w / "plot.png"
                    cases.append(Case(name, [PY, POST / f"{who}.py", bad, "-o", png], w, [png], script=True,
                                      prog=f"{who}.py"))
    # Corrupted model files for kinflow-sample (half of the corruptions of each).
    if TRAIN.exists():
        for which in ("model_fm", "model_snap"):
            d = root / "models" / which
            d.mkdir(parents=True)
            muts = byte_mutations(rng, Path(base[which]).read_bytes())
            for mut, data in rng.sample(muts, len(muts) // 2):
                bad = d / f"{mut.split('@')[0]}.pt"
                bad.write_bytes(data)
                tag = f"{which}-{mut.split('@')[0]}"
                w = work(tag)
                out = w / "out" / "s.h5"
                deck = write_ini(w / "sample.ini", {"sample": {"model_file": bad, "count": 0 if which == "model_snap" else 20,
                                                               "nfe": 4}, "output": {"file": out}})
                cases.append(Case(f"model/{tag}", [SAMPLE, deck, "--quiet"], w, [out], prog="kinflow-sample"))
        # and the MODEL.h5 beside each model for kinflow-generate (half of the corruptions of each)
        for which in ("model_fm", "model_snap") if GENERATE.exists() else ():
            d = root / "models" / f"{which}_h5"
            d.mkdir(parents=True)
            muts = byte_mutations(rng, Path(base[which]).with_suffix(".h5").read_bytes())
            for mut, data in rng.sample(muts, len(muts) // 2):
                bad = d / f"{mut.split('@')[0]}.h5"
                bad.write_bytes(data)
                tag = f"{which}-h5-{mut.split('@')[0]}"
                w = work(tag)
                out = w / "out" / "s.h5"
                deck = write_ini(w / "sample.ini", {"sample": {"model_file": bad, "count": 0 if which == "model_snap" else 20,
                                                               "nfe": 4}, "output": {"file": out}})
                cases.append(Case(f"model/{tag}", [GENERATE, deck, "--quiet"], w, [out], prog="kinflow-generate"))
    # Damaged summary.json for report.py.
    good = json.loads((base["fake_run"] / "summary.json").read_text())
    for k, (mut, body) in enumerate([("truncated", json.dumps(good)[:40]), ("empty", ""), ("list", "[1, 2]"),
                                     ("no-files", json.dumps({**good, "files": None})),
                                     ("kind-int", json.dumps({**good, "kind": 3})),
                                     ("metrics-str", json.dumps({**good, "metrics": "x"})),
                                     ("missing-file", json.dumps({**good, "files": {**good["files"], "reference": "/nope.h5"}})),
                                     ("generated-list", json.dumps({**good, "files": {**good["files"], "generated": [1]}})),
                                     ("nan-metric", json.dumps({**good, "wall_s": float("nan")})),
                                     ("binary", "\x00\xff garbage")]):
        w = work(f"summary-{mut}")
        run_dir = w / "pipe"
        shutil.copytree(base["fake_run"], run_dir)
        (run_dir / "summary.json").write_text(body)
        outs = [run_dir / n for n in ("densities.png", "loss.png", "metrics.png", "report.png", "report.html")]
        cases.append(Case(f"summary/{mut}", [PY, POST / "report.py", run_dir, "--quiet"], w, outs, script=True,
                          prog="report.py"))
    return cases


def fake_run_dir(run_dir, reference, generated):
    """A fokker_planck pipeline run directory (summary.json and its files) for report.py."""
    run_dir.mkdir(parents=True)
    w2 = {"w2": 0.1, "w2_se": 0.01, "sliced_w2": 0.05, "mean_error": 0.01}
    summary = {"kind": "fokker_planck", "deck": "fuzz.ini", "overrides": [], "ranks": 1, "wall_s": 1.0,
               "files": {"reference": str(reference), "generated": {"fm_ode": str(generated)}, "models": {}},
               "problem": {"time": 0.04, "particles": 40, "generated": 40},
               "metrics": {"fm_ode": w2}, "ode_sde_gap": w2, "baselines": {"initial": w2, "independent_simulation": w2},
               "timings": {"simulate_s": 1.0}}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


# ---- base files ---------------------------------------------------------------------------------

def check(r, what):
    assert r.returncode == 0, f"{what}: {r.stderr}"


def make_base(root):
    """Small valid inputs: three simulations, three models, one sample file, one report run dir."""
    b = {}
    root.mkdir(parents=True, exist_ok=True)

    def sim(name, deck, *extra):
        out = root / f"{name}.h5"
        check(subprocess.run([str(SIMULATE), str(SRC / "inputs" / deck), f"--output.file={out}", "--quiet", *extra],
                             capture_output=True, text=True, env=ENV, timeout=120), name)
        b[name] = out

    sim("lang", "langevin_mean_field.ini", "--langevin.particles=40", "--run.steps=4", "--output.every=2")
    sim("ks", "ks2d_subcritical.ini", "--ks.particles=40", "--run.steps=4", "--output.every=2")
    sim("dsmc", "dsmc_mixture_disparate_mass.ini", "--dsmc.particles=40", "--run.steps=4", "--output.every=2")
    if TRAIN.exists():
        for name, keys in (("model_fm", {"data": "builtin:eight_gaussians"}),
                           ("model_dsm", {"objective": "dsm", "data": "builtin:eight_gaussians"}),
                           ("model_snap", {"data": b["lang"], "source": "snapshot:0"})):
            model = root / f"{name}.pt"
            t = {"objective": "fm", "builtin_size": 200, "hidden": 8, "layers": 1, "batch_size": 16, "steps": 3,
                 "model_file": model, **keys}
            deck = write_ini(root / f"{name}.ini", {"run": {"seed": 1}, "train": t})
            check(subprocess.run([str(TRAIN), str(deck), "--quiet"], capture_output=True, text=True, env=ENV,
                                 timeout=120), name)
            b[name] = model
        out = root / "samples.h5"
        deck = write_ini(root / "sample.ini", {"sample": {"model_file": b["model_snap"], "count": 0, "nfe": 4},
                                               "output": {"file": out}})
        check(subprocess.run([str(SAMPLE), str(deck), "--quiet"], capture_output=True, text=True, env=ENV,
                             timeout=120), "samples")
        b["samples"] = out
    else:
        b["samples"] = b["lang"]
    b["fake_run"] = fake_run_dir(root / "fake_run", b["lang"], b["samples"])
    r = subprocess.run([PY, str(POST / "report.py"), str(b["fake_run"]), "--quiet"], capture_output=True, text=True,
                       env=ENV, timeout=120)
    check(r, "report.py on the fake run")
    for n in ("densities.png", "loss.png", "metrics.png", "report.png", "report.html"):
        (b["fake_run"] / n).unlink()
    return b


def all_cases(root):
    base = make_base(root / "base")
    rng = random.Random(SEED)
    return deck_cases(rng, root, base) + h5_cases(rng, root, base)


# ---- the tests ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    cases = all_cases(root)
    t0 = time.perf_counter()
    results = run_all(cases)
    return results, time.perf_counter() - t0


def test_fuzz_decks_and_files(fuzz_results):
    results, seconds = fuzz_results
    decks = sum(r.case.name.startswith("deck/") for r in results)
    assert decks >= 500 and len(results) >= 1000, len(results)
    bad, text = report(results)
    assert not bad, f"{len(bad)} of {len(results)} fuzz cases failed ({seconds:.0f} s):\n{text}"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="kinflow-fuzz-") as tmp:
        t_setup = time.perf_counter()
        cases = all_cases(Path(tmp))
        t0 = time.perf_counter()
        only = sys.argv[1] if len(sys.argv) > 1 else ""
        cases = [c for c in cases if only in c.name]
        results = run_all(cases)
        elapsed = time.perf_counter() - t0
        bad, text = report(results)
        kinds = {}
        for r in results:
            k = r.case.name.split("/")[0]
            kinds[k] = kinds.get(k, 0) + 1
        slow = sorted(results, key=lambda r: -r.seconds)[:8]
        print(text)
        print("slowest:", ", ".join(f"{r.case.name} {r.seconds:.1f}s" for r in slow))
        print(f"{len(results)} cases ({kinds}), {len(bad)} failed; setup {t0 - t_setup:.0f} s, cases {elapsed:.0f} s")
        sys.exit(1 if bad else 0)
