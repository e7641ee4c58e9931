"""The XDMF sidecar (FILE.xmf) that kinflow's writer puts beside every HDF5 file: its XML
references the right datasets with the right shapes and times (checked against the HDF5 file
with h5py), and ParaView's own reader (pvpython, Debian's paraview package: ci/test.sh installs
it) opens it as a temporal point set with the file's point counts, arrays, times and
coordinates. Without pvpython that part is skipped, saying why."""
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
EXE = BUILD / "drivers" / "kinflow-simulate"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
INPUTS = SRC / "inputs"

RUNS = {  # name: (deck, overrides) — 1D positions, 2D with velocities, 3D with species
    "langevin_1d": ("langevin_ou.ini", ["--langevin.dim=1", "--langevin.particles=200", "--langevin.center=0",
                                     "--langevin.init_mean=2"]),
    "langevin_2d_underdamped": ("langevin_double_well.ini", ["--langevin.particles=300", "--langevin.dynamics=underdamped",
                                                          "--langevin.dim=2"]),
    "dsmc_mixture": ("dsmc_mixture_disparate_mass.ini", ["--dsmc.particles=400"]),
}

PV_SCRIPT = r"""
import json, sys
from paraview.simple import OpenDataFile, XDMFReader, servermanager
from vtk.util.numpy_support import vtk_to_numpy
r = XDMFReader(FileNames=[sys.argv[1]]) if sys.argv[2] == "XDMFReader" else OpenDataFile(sys.argv[1])
if sys.argv[2] == "XDMFReader":
    r.PointArrayStatus = r.GetProperty("PointArrayInfo")[::2]
assert type(r).__name__ == sys.argv[2], type(r).__name__
out = {"reader": type(r).__name__, "times": list(r.TimestepValues), "steps": []}
for t in r.TimestepValues:
    r.UpdatePipeline(t)
    d = servermanager.Fetch(r)
    pd = d.GetPointData()
    arrays = {pd.GetArrayName(i): [pd.GetArray(i).GetNumberOfTuples(), pd.GetArray(i).GetNumberOfComponents()]
              for i in range(pd.GetNumberOfArrays())}
    pts = vtk_to_numpy(d.GetPoints().GetData())
    out["steps"].append({"points": d.GetNumberOfPoints(), "arrays": arrays, "first": pts[:3].tolist(),
                         "last": pts[-1].tolist()})
print("JSON" + json.dumps(out))
"""


def simulate(tmp_path, name):
    deck, over = RUNS[name]
    out = tmp_path / f"{name}.h5"
    r = subprocess.run([str(EXE), str(INPUTS / deck), *over, "--run.steps=20", "--output.every=10", "--quiet",
                        f"--output.file={out}"], capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def snapshots(h5):
    with h5py.File(h5, "r") as f:
        return [(name, float(g.attrs["time"]), {k: g[k][()] for k in g}) for name, g in f["snapshots"].items()]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_sidecar_references_every_snapshot(tmp_path, name):
    h5 = simulate(tmp_path, name)
    xmf = h5.with_suffix(".xmf")
    assert xmf.is_file() and not Path(f"{xmf}.tmp").exists()
    snaps = snapshots(h5)
    root = ET.parse(xmf).getroot()
    coll = root.find("Domain/Grid")
    assert coll.get("GridType") == "Collection" and coll.get("CollectionType") == "Temporal"
    grids = coll.findall("Grid")
    assert len(grids) == len(snaps) == 3
    for g, (sname, time, data) in zip(grids, snaps):
        assert float(g.find("Time").get("Value")) == time
        n = data["position"].shape[0]
        assert g.find("Topology").get("TopologyType") == "Polyvertex"
        assert int(g.find("Topology").get("NumberOfElements")) == n
        items = {}
        for item in g.iter("DataItem"):
            if item.get("Format") == "HDF":
                file, path = item.text.split(":")
                assert file == h5.name
                items[path.rsplit("/", 1)[1]] = [int(x) for x in item.get("Dimensions").split()]
        for key, arr in data.items():
            shape = [n] if key == "position" and arr.shape[1:] == (1,) else list(arr.shape)  # 1D: x as a vector
            assert items[key] == shape, (sname, key)
        attrs = {a.get("Name") for a in g.findall("Attribute")}
        assert attrs == set(data) - {"position"}


# ParaView offers two XDMF readers: its default for .xmf (Xdmf3ReaderS) and the classic one
# (XDMFReader). Both read 2D and 3D files; 1D files need the classic one (Xdmf3ReaderS reads no
# X_Y_Z geometry) — README says so.
@pytest.mark.parametrize("name,reader", [(n, r) for n in sorted(RUNS) for r in ("Xdmf3ReaderS", "XDMFReader")
                                         if not (n == "langevin_1d" and r == "Xdmf3ReaderS")])
def test_paraview_opens_the_sidecar(tmp_path, name, reader):
    pv = shutil.which("pvpython")
    if pv is None:
        pytest.skip("pvpython not found (Debian's paraview package; ci/install-deps.sh --with-paraview installs it)")
    h5 = simulate(tmp_path, name)
    script = tmp_path / "pv.py"
    script.write_text(PV_SCRIPT)
    r = subprocess.run([pv, "--force-offscreen-rendering", str(script), str(h5.with_suffix(".xmf")), reader],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    line = [l for l in r.stdout.splitlines() if l.startswith("JSON")]
    assert r.returncode == 0 and line, r.stdout + r.stderr
    got = json.loads(line[0][4:])
    snaps = snapshots(h5)
    assert got["times"] == [t for _, t, _ in snaps]
    for step, (_, _, data) in zip(got["steps"], snaps):
        pos = data["position"]
        n, dim = pos.shape
        assert step["points"] == n
        expected = {k: [n, v.shape[1] if v.ndim == 2 else 1] for k, v in data.items() if k != "position"}
        assert step["arrays"] == expected
        padded = np.zeros((n, 3))
        padded[:, :dim] = pos
        np.testing.assert_array_equal(np.array(step["first"]), padded[:3])
        np.testing.assert_array_equal(np.array(step["last"]), padded[-1])
