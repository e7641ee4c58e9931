"""kinflow-simulate as a user meets it: --help, --version (every driver), bad input (one clear line,
non-zero exit, no output file), rank-count agreement of whole files, partial output on a run-time failure, and the
postprocess scripts on a real run."""
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
EXE = BUILD / "drivers" / "kinflow-simulate"
MPIEXEC = os.environ.get("KINFLOW_MPIEXEC", "mpiexec")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1",
           KOKKOS_DISABLE_WARNINGS="1")  # the OpenMP lane oversubscribes on purpose

TINY = """[run]
engine = langevin
seed = 5
steps = 30
dt = 0.01
[output]
file = {out}
every = 10
[langevin]
dim = 2
particles = 301
dynamics = {dynamics}
potential = double_well
interaction = harmonic
interaction_strength = 0.5
init_mean = 0.5, -0.5
"""


def run(args, ranks=1, threads=None, **kw):
    # -q: no Open MPI banner on a non-zero exit, so stderr holds only what kinflow printed
    cmd = [MPIEXEC, "-q", "-n", str(ranks), "--oversubscribe", str(EXE), *map(str, args)]
    env = dict(ENV, OMP_NUM_THREADS=str(threads)) if threads else ENV
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, **kw)


def deck(tmp_path, text, name="deck.ini"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_help_documents_every_key():
    r = run(["--help"])
    assert r.returncode == 0
    for key in ["engine", "seed", "steps", "dt", "file", "every", "dim", "particles", "dynamics", "potential",
                "stiffness", "center", "temperature", "friction", "interaction", "interaction_strength", "init",
                "init_mean", "init_std", "init_file"]:
        assert f"\n  {key} = " in r.stdout, key


# The lines of every driver's --version (io::version_report), in order.
VERSION_LINES = [
    r"kinflow-(simulate|compare|train|sample) \d+\.\d+\.\d+",
    r"Kokkos: \d+\.\d+\.\d+, execution spaces:( (Serial|OpenMP|Threads|HPX|Cuda|HIP|SYCL|OpenMPTarget))+"
    r" \(default \w+\)",
    r"MPI: \S.*",
    r"HDF5: \d+\.\d+\.\d+, parallel: (yes|no)",
    r"LibTorch: (no|yes, \d+\.\d+\S*)",
]


@pytest.mark.parametrize("driver", ["kinflow-simulate", "kinflow-compare", "kinflow-train", "kinflow-sample"])
def test_version_names_the_libraries(driver):
    exe = BUILD / "drivers" / driver
    if not exe.exists():
        pytest.skip(f"{driver} not built")
    r = subprocess.run([MPIEXEC, "-q", "-n", "1", str(exe), "--version"], capture_output=True, text=True, env=ENV,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(VERSION_LINES), r.stdout
    for line, pattern in zip(lines, VERSION_LINES):
        assert re.fullmatch(pattern, line), (pattern, line)
    assert lines[0].startswith(driver + " ")
    # Built with LibTorch exactly when the LibTorch drivers exist; this build's HDF5 is parallel.
    torch = (BUILD / "drivers" / "kinflow-train").exists()
    assert lines[4].startswith("LibTorch: yes, " if torch else "LibTorch: no"), lines[4]
    assert lines[3].endswith("parallel: yes")


BAD = {
    # name: (deck body or None for no deck, extra args, substrings the one-line message must hold)
    "unknown_key": ("[langevin]\nbogus = 3\n", [], ["deck.ini", "langevin.bogus"]),
    "wrong_type": ("[langevin]\ndim = three\n", [], ["deck.ini", "three", "langevin.dim"]),
    "out_of_range": ("[langevin]\ndim = 4\n", [], ["deck.ini", "langevin.dim", "'4'", "[1, 3]"]),
    "bad_choice": ("[langevin]\npotential = quartic\n", [], ["deck.ini", "langevin.potential", "quartic"]),
    "bad_vector": ("[langevin]\ndim = 2\ncenter = 1,2,3\n", [], ["deck.ini", "langevin.center", "1,2,3"]),
    "unstable_dt": ("[run]\ndt = 3\n[langevin]\nstiffness = 1\n", [], ["deck.ini", "run.dt", "'3'", "dt < 2"]),
    "cli_out_of_range": ("[run]\nsteps = 3\n", ["--langevin.particles=0"], ["command line", "langevin.particles", "'0'"]),
    "cli_unknown": ("[run]\nsteps = 3\n", ["--langevin.nope=1"], ["command line", "nope"]),
    "missing_init_file": ("[langevin]\ninit = file\ninit_file = /nonexistent/x.h5\n", [], ["deck.ini", "init_file", "/nonexistent/x.h5"]),
    "missing_deck": (None, ["/nonexistent/deck.ini"], ["/nonexistent/deck.ini", "cannot open"]),
    "grid_periodic_one_face": ("[run]\nengine = dsmc\n[dsmc]\nspace = grid\n"
                               "boundary = periodic,specular,periodic,periodic,periodic,periodic\n", [],
                               ["deck.ini", "dsmc.boundary", "both or neither"]),
    "grid_box": ("[run]\nengine = dsmc\n[dsmc]\nspace = grid\nbox_hi = 1,0,1\n", [], ["deck.ini", "dsmc.box_hi"]),
    "grid_balance": ("[run]\nengine = dsmc\n[dsmc]\nspace = grid\nbalance_every = 5\nbalance_threshold = 1\n", [],
                     ["deck.ini", "dsmc.balance_threshold", "must be > 1"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_nonzero_no_output(tmp_path, case):
    body, extra, needles = BAD[case]
    out = tmp_path / "out" / "run.h5"
    args = []
    if body is not None:
        args.append(deck(tmp_path, body + f"[output]\nfile = {out}\n"))
    r = run(args + extra + ["--run.steps=3"], ranks=2)
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert not out.exists() and not Path(str(out) + ".tmp").exists()


def test_unwritable_output_path(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out = blocker / "sub" / "run.h5"
    r = run([deck(tmp_path, "[run]\nsteps = 2\n[langevin]\nparticles = 10\n"), f"--output.file={out}"], ranks=2)
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "output.file" in lines[0] and str(out) in lines[0], r.stderr
    assert not out.exists()


def read_all(path):
    with h5py.File(path, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        data = {}
        f.visititems(lambda name, obj: data.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        snap_attrs = {k: dict(f["snapshots"][k].attrs) for k in f["snapshots"]}
    return attrs, data, snap_attrs


@pytest.mark.parametrize("dynamics", ["overdamped", "underdamped"])
def test_one_and_two_ranks_write_bit_identical_files(tmp_path, dynamics):
    # 1 rank x 1 thread against 2 ranks x 2 threads (threads matter in the OpenMP lane of
    # ci/test.sh; per-particle work and chunked sums make the bits independent of both).
    files = []
    for ranks, threads in ((1, 1), (2, 2)):
        out = tmp_path / f"r{ranks}.h5"
        r = run([deck(tmp_path, TINY.format(out=out, dynamics=dynamics), f"d{ranks}.ini"), "--quiet"], ranks=ranks,
                threads=threads)
        assert r.returncode == 0, r.stderr
        files.append(read_all(out))
    (a1, d1, s1), (a2, d2, s2) = files
    assert a1["mpi_ranks"] == 1 and a2["mpi_ranks"] == 2
    for k in ("producer", "seed", "dim", "kinflow_version"):
        assert a1[k] == a2[k]
    assert sorted(d1) == sorted(d2)
    assert "snapshots/000003/position" in d1 and "diagnostics/time" in d1
    for name in d1:
        np.testing.assert_array_equal(d1[name], d2[name], err_msg=name)  # bit-identical
    assert s1 == s2
    assert d1["snapshots/000000/position"].shape == (301, 2)
    np.testing.assert_array_equal(d1["snapshots/000002/id"], np.arange(301))
    if dynamics == "underdamped":
        assert d1["snapshots/000001/velocity"].shape == (301, 3)
        assert "diagnostics/kinetic_energy" in d1
    np.testing.assert_allclose(d1["diagnostics/time"], [0, 0.1, 0.2, 0.3])


def test_resolved_deck_records_overrides_and_defaults(tmp_path):
    out = tmp_path / "o.h5"
    r = run([deck(tmp_path, TINY.format(out=out, dynamics="overdamped")), "--langevin.temperature=0.25", "--quiet"])
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as f:
        text = f.attrs["deck"]
        text = text.decode() if isinstance(text, bytes) else text
        assert f.attrs["producer"] in ("langevin", b"langevin")
        assert f.attrs["seed"] == 5
    assert "temperature = 0.25\n" in text
    assert "friction = 1\n" in text  # a default, resolved
    assert "[langevin]" in text and "[run]" in text and "[output]" in text


def test_runtime_failure_keeps_partial_output_and_says_so(tmp_path):
    # The double well's cubic drift explodes for a large step: the run must stop with a clear
    # message, keep the snapshots written so far as FILE.incomplete and leave no FILE.
    out = tmp_path / "boom.h5"
    body = f"[run]\nsteps = 200\ndt = 0.5\n[output]\nfile = {out}\nevery = 1\n[langevin]\npotential = double_well\ninit_std = 3\nparticles = 50\n"
    r = run([deck(tmp_path, body), "--quiet"])
    assert r.returncode != 0
    assert "not finite" in r.stderr and ".incomplete" in r.stderr, r.stderr
    assert not out.exists()
    partial = Path(str(out) + ".incomplete")
    with h5py.File(partial, "r") as f:
        assert len(f["snapshots"]) >= 1
        assert np.all(np.isfinite(f["diagnostics/variance_0"][()]))


def test_progress_line_and_quiet(tmp_path):
    out = tmp_path / "p.h5"
    d = deck(tmp_path, TINY.format(out=out, dynamics="overdamped"))
    r = run([d])
    assert r.returncode == 0 and "particle-steps/s" in r.stderr
    r = run([d, "--quiet"])
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == ""


def test_postprocess_scripts_on_a_real_run(tmp_path):
    out = tmp_path / "ou.h5"
    r = run([SRC / "inputs" / "langevin_ou.ini", f"--output.file={out}", "--langevin.particles=2000",
             "--run.steps=200", "--quiet"], ranks=2)
    assert r.returncode == 0, r.stderr
    for script in ("plot_moments.py", "plot_density.py"):
        p = subprocess.run([sys.executable, str(SRC / "postprocess" / script), str(out), "-o", str(tmp_path / (script + ".png"))],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert (tmp_path / (script + ".png")).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


SPATIAL = """[run]
engine = dsmc
seed = 3
steps = 12
dt = 2e-8
[output]
file = {out}
every = 4
particles = true
[dsmc]
space = grid
units = si
kernel = hard_sphere
d_ref = 3.659e-10
mass = 6.63e-26
number_density = 7.0704e22
temperature = 273.15
drift = 100, 0, 0
init = riemann
riemann_x0 = 4e-4
density_right = 3.5e22
box_hi = 1e-3, 2.5e-4, 2.5e-4
cells = 8, 2, 1
boundary = inflow, outflow, diffuse, specular, periodic, periodic
wall_temperature = 300
collisions = true
particles = 3000
average_from = 6
"""


def test_spatial_dsmc_one_and_two_ranks_write_identical_fields(tmp_path):
    """dsmc.space = grid: /grid and /fields as documented (docs/output.md), the 1- and 2-rank files
    hold bit-identical fields and particle rows, and plot_dsmc_fields.py reads them."""
    files = []
    for ranks in (1, 2):
        out = tmp_path / f"s{ranks}.h5"
        r = run([deck(tmp_path, SPATIAL.format(out=out), f"s{ranks}.ini"), "--quiet"], ranks=ranks)
        assert r.returncode == 0, r.stderr
        files.append(out)
    with h5py.File(files[0], "r") as a, h5py.File(files[1], "r") as b:
        assert list(a["grid/cells"]) == [8, 2, 1] and a["grid/x"].shape == (8,)
        assert sorted(a["fields"]) == ["000000", "000001", "000002", "000003"]
        g = a["fields/000003"]
        assert g.attrs["step"] == 12 and g.attrs["samples"] == 6 and a["fields/000000"].attrs["samples"] == 1
        assert g["number_density"].shape == (1, 2, 8) and g["velocity"].shape == (1, 2, 8, 3)
        for name in ("number_density", "velocity", "temperature", "temperature_x", "temperature_y", "temperature_z",
                     "pressure", "heat_flux", "shear_stress_xy", "particles_per_cell"):
            for k in a["fields"]:
                assert np.array_equal(a[f"fields/{k}/{name}"][()], b[f"fields/{k}/{name}"][()]), (k, name)
        for k in a["snapshots"]:
            for name in ("position", "velocity", "id"):
                assert np.array_equal(a[f"snapshots/{k}/{name}"][()], b[f"snapshots/{k}/{name}"][()]), (k, name)
        assert a["diagnostics/particles"][-1] == b["diagnostics/particles"][-1]
        assert a["diagnostics/collisions"][-1] == b["diagnostics/collisions"][-1] > 0
        assert a["diagnostics/inflow_xlo"][-1] > 0 and a["diagnostics/outflow_xhi"][-1] > 0
    r = subprocess.run([sys.executable, str(SRC / "postprocess" / "plot_dsmc_fields.py"), str(files[0]), "-o",
                        str(tmp_path / "f.png")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f.png").stat().st_size > 10000
