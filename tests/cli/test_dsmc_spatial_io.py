"""Spatial DSMC (dsmc.space = grid) file input: init = file reads a spatial run's own particle
snapshot (output.particles = true) back — the fields and particle snapshot at step 0 of the run
started from it equal the snapshot's run at that output byte for byte, on 1 and 2 ranks — and
bad files fail with one line naming dsmc.init_file (particles outside the box, wrong
dimension, missing velocity)."""
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
EXE = BUILD / "drivers" / "kinflow-simulate"
MPIEXEC = os.environ.get("KINFLOW_MPIEXEC", "mpiexec")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", KOKKOS_DISABLE_WARNINGS="1")
INPUTS = SRC / "inputs"

# The free expansion at CI size with collisions and a diffuse wall; weight given, so that the run
# from the file uses the same F_N.
BASE = [INPUTS / "dsmc_free_expansion.ini", "--dsmc.particles=4000", "--dsmc.weight=1.7676e8",
        "--dsmc.cells=24,1,1", "--dsmc.collisions=true", "--dsmc.wall_temperature=300",
        "--dsmc.boundary=diffuse,specular,periodic,periodic,periodic,periodic", "--run.dt=2e-8",
        "--output.particles=true", "--quiet"]


def run(args, ranks=1):
    cmd = [MPIEXEC, "-q", "-n", str(ranks), "--oversubscribe", str(EXE), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)


def one_line(r):
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = tmp_path_factory.mktemp("spatial_io") / "a.h5"
    r = run([*BASE, "--run.steps=10", "--output.every=5", f"--output.file={out}"], 2)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("ranks", [1, 2])
def test_init_file_round_trips_the_particle_snapshot(tmp_path, source, ranks):
    out = tmp_path / "b.h5"
    r = run([*BASE, "--run.steps=5", "--output.every=5", "--dsmc.init=file", f"--dsmc.init_file={source}",
             "--dsmc.init_snapshot=1", f"--output.file={out}"], ranks)
    assert r.returncode == 0, r.stderr
    with h5py.File(source, "r") as fa, h5py.File(out, "r") as fb:
        a, b = fa["snapshots/000001"], fb["snapshots/000000"]
        assert a.attrs["step"] == 5 and len(a["id"]) > 1000
        for ds in ("position", "velocity", "id", "species"):
            assert a[ds][()].tobytes() == b[ds][()].tobytes(), ds
        fa1, fb0 = fa["fields/000001"], fb["fields/000000"]
        assert sorted(fa1) == sorted(fb0)
        for ds in fa1:
            assert fa1[ds][()].tobytes() == fb0[ds][()].tobytes(), ds
        assert fb["diagnostics/particles"][0] == len(a["id"])
        assert fb["diagnostics/collisions"][-1] > 0  # it runs on from the file
        # inserted particles (none here) would get ids after the file's; ids stay unique
        ids = fb["snapshots/000001/id"][()]
        assert len(np.unique(ids)) == len(ids)


def test_init_file_errors_are_one_line(tmp_path, source):
    base = [*BASE, "--run.steps=2", "--dsmc.init=file", f"--output.file={tmp_path / 'b.h5'}"]
    # particles outside the box
    r = run([*base, f"--dsmc.init_file={source}", "--dsmc.box_hi=0.5e-3,1e-4,1e-4"])
    assert r.returncode != 0
    line = one_line(r)
    assert "dsmc.init_file" in line and "outside the box" in line, line
    # a snapshot without velocities
    bad = tmp_path / "novel.h5"
    with h5py.File(source, "r") as fa, h5py.File(bad, "w") as fb:
        for k, v in fa.attrs.items():
            fb.attrs[k] = v
        g = fb.create_group("snapshots/000000")
        for k, v in fa["snapshots/000000"].attrs.items():
            g.attrs[k] = v
        for ds in ("position", "id", "species"):
            g[ds] = fa["snapshots/000000"][ds][()]
    r = run([*base, f"--dsmc.init_file={bad}"])
    assert r.returncode != 0
    line = one_line(r)
    assert "dsmc.init_file" in line and "velocity" in line, line
    # a file of another dimension (1-D Langevin positions)
    lang = tmp_path / "lang.h5"
    r = run([INPUTS / "langevin_ou.ini", "--langevin.dim=1", "--langevin.center=0", "--langevin.init_mean=2", "--langevin.particles=50", "--run.steps=2", "--quiet",
             f"--output.file={lang}"])
    assert r.returncode == 0, r.stderr
    r = run([*base, f"--dsmc.init_file={lang}"])
    assert r.returncode != 0
    line = one_line(r)
    assert "dsmc.init_file" in line and "dim 1" in line, line


# ---- the XDMF sidecar's cell fields ----------------------------------------------------------
PV_FIELDS = r"""
import json, sys
from paraview.simple import OpenDataFile, servermanager
from vtk.util.numpy_support import vtk_to_numpy
r = OpenDataFile(sys.argv[1])
out = {"times": list(r.TimestepValues), "grids": []}
def walk(o):
    if o is None:
        return
    if o.IsA("vtkMultiBlockDataSet"):
        for i in range(o.GetNumberOfBlocks()):
            walk(o.GetBlock(i))
    elif o.IsA("vtkMultiPieceDataSet"):
        for i in range(o.GetNumberOfPieces()):
            walk(o.GetPiece(i))
    elif o.IsA("vtkImageData"):
        cd = o.GetCellData()
        out["grids"].append({"cells": o.GetNumberOfCells(), "bounds": list(o.GetBounds()),
                             "arrays": {cd.GetArrayName(i): vtk_to_numpy(cd.GetArray(i)).tolist()
                                        for i in range(cd.GetNumberOfArrays())}})
r.UpdatePipeline(r.TimestepValues[-1])
walk(servermanager.Fetch(r))
print(json.dumps(out))
"""


@pytest.mark.parametrize("particles", ["false", "true"])
def test_xdmf_sidecar_holds_the_cell_fields(tmp_path, particles):
    """/fields as a temporal collection of 3DCoRectMesh grids with cell-centred attributes: the
    XML against the file (h5py), then ParaView's reader (pvpython) against the datasets."""
    import json
    import shutil
    import xml.etree.ElementTree as ET
    out = tmp_path / "f.h5"
    r = run([INPUTS / "dsmc_free_expansion.ini", "--dsmc.particles=4000", "--dsmc.cells=8,2,3", "--run.steps=10",
             "--output.every=5", f"--output.particles={particles}", "--quiet", f"--output.file={out}"], 2)
    assert r.returncode == 0, r.stderr
    xmf = tmp_path / "f.xmf"
    root = ET.parse(xmf).getroot()
    coll = [g for g in root.find("Domain").findall("Grid") if g.get("Name") == "fields"]
    assert len(coll) == 1 and coll[0].get("CollectionType") == "Temporal"
    grids = coll[0].findall("Grid")
    with h5py.File(out, "r") as f:
        assert [g.get("Name") for g in grids] == sorted(f["fields"])
        cells = f["grid/cells"][()]
        lo, hi = f["grid/lo"][()], f["grid/hi"][()]
        for g in grids:
            fg = f["fields"][g.get("Name")]
            assert float(g.find("Time").get("Value")) == pytest.approx(fg.attrs["time"], rel=1e-5)
            topo = g.find("Topology")
            assert topo.get("TopologyType") == "3DCoRectMesh"
            assert [int(v) for v in topo.get("Dimensions").split()] == [cells[2] + 1, cells[1] + 1, cells[0] + 1]
            origin, spacing = [[float(v) for v in d.text.split()] for d in g.find("Geometry").findall("DataItem")]
            np.testing.assert_allclose(origin, lo[::-1], rtol=1e-15)
            np.testing.assert_allclose(spacing, ((hi - lo) / cells)[::-1], rtol=1e-15)
            attrs = {a.get("Name"): a for a in g.findall("Attribute")}
            assert sorted(attrs) == sorted(fg)
            for name, a in attrs.items():
                assert a.get("Center") == "Cell"
                item = a.find("DataItem")
                assert item.text == f"f.h5:/fields/{g.get('Name')}/{name}"
                assert [int(v) for v in item.get("Dimensions").split()] == list(fg[name].shape)
                assert a.get("AttributeType") == ("Vector" if fg[name].ndim == 4 else "Scalar")
        assert (root.find("Domain").find("Grid[@Name='particles']") is not None) == (particles == "true")
        last = f["fields"][sorted(f["fields"])[-1]]
        pv = shutil.which("pvpython")
        if not pv:
            pytest.skip("pvpython not found (Debian's paraview package; ci/install-deps.sh --with-paraview installs it)")
        script = tmp_path / "pv.py"
        script.write_text(PV_FIELDS)
        r = subprocess.run([pv, str(script), str(xmf)], capture_output=True, text=True, timeout=300, env=ENV)
        assert r.returncode == 0, r.stderr[-2000:]
        got = json.loads(r.stdout.strip().splitlines()[-1])
        np.testing.assert_allclose(got["times"], [f["fields"][n].attrs["time"] for n in sorted(f["fields"])], rtol=1e-5)
        fields = [g for g in got["grids"] if "number_density" in g["arrays"]]
        assert len(fields) == 1
        g = fields[0]
        assert g["cells"] == int(np.prod(cells))
        np.testing.assert_allclose(g["bounds"], [lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]], rtol=1e-12)
        for name in last:  # VTK's cell order (x fastest) is the datasets' C order [nz, ny, nx]
            want = last[name][()].reshape(int(np.prod(cells)), -1).squeeze()
            np.testing.assert_array_equal(np.array(g["arrays"][name]), want, err_msg=name)
