"""`cmake --install` of this build into a temporary prefix: the drivers, libraries, public headers,
decks, postprocess scripts and CMake package land there; a small project outside the tree
(tests/install/CMakeLists.txt, main.cpp) is configured with find_package(kinflow), built against
the installed tree and run; the installed kinflow-simulate reports --version and runs a shipped deck."""
import os
import re
import subprocess
from pathlib import Path

import h5py
import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
CMAKE = os.environ.get("KINFLOW_CMAKE", "cmake")
MPIEXEC = os.environ.get("KINFLOW_MPIEXEC", "mpiexec")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", KOKKOS_DISABLE_WARNINGS="1")


def cache(key):
    """A value from the build's CMakeCache.txt ('' when absent)."""
    for line in (BUILD / "CMakeCache.txt").read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split("=", 1)[1]
    return ""


def check(cmd, timeout, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV, timeout=timeout, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def mpirun(ranks, *args):
    return check([MPIEXEC, "-q", "-n", ranks, "--oversubscribe", *args], timeout=120)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    p = tmp_path_factory.mktemp("prefix")
    check([CMAKE, "--install", BUILD, "--prefix", p], timeout=300)
    return p


def test_installed_tree(prefix):
    drivers = ["kinflow-simulate", "kinflow-compare", "kinflow-generate"]
    if (BUILD / "drivers" / "kinflow-train").exists():
        drivers += ["kinflow-train", "kinflow-sample"]
    for d in drivers:
        assert os.access(prefix / "bin" / d, os.X_OK), d
    configs = list(prefix.glob("lib*/**/cmake/kinflow/kinflowConfig.cmake"))
    assert len(configs) == 1, configs
    for f in ["kinflowConfigVersion.cmake", "kinflowTargets.cmake", "kokkos_include_fix.cmake"]:
        assert (configs[0].parent / f).exists(), f
    assert list(prefix.glob("lib*/**/libkinflow_core.*")) and list(prefix.glob("lib*/**/libkinflow_langevin.*"))
    for h in ["core/version.hpp", "core/particle_set.hpp", "comm/communicator.hpp", "io/version_report.hpp",
              "engines/langevin/langevin_engine.hpp", "metrics/distances.hpp", "generate/generate.hpp",
              "generate/network.hpp", "sample/plan.hpp", "learn/model_info.hpp"]:
        assert (prefix / "include" / "kinflow" / h).exists(), h
    assert not list((prefix / "include").rglob("*.in"))
    decks = {p.name for p in (SRC / "inputs").glob("*.ini")}
    assert decks and decks == {p.name for p in (prefix / "share" / "kinflow" / "inputs").glob("*.ini")}
    scripts = {p.name for p in (SRC / "postprocess").glob("*.py")}
    assert scripts and scripts == {p.name for p in (prefix / "share" / "kinflow" / "postprocess").glob("*.py")}


def test_installed_simulate_version_and_deck(prefix, tmp_path):
    r = mpirun(1, prefix / "bin" / "kinflow-simulate", "--version")
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"kinflow-simulate \d+\.\d+\.\d+", lines[0]), r.stdout
    for field in ["Kokkos: ", "MPI: ", "HDF5: ", "LibTorch: "]:
        assert any(line.startswith(field) for line in lines), (field, r.stdout)
    # A shipped deck from share/kinflow/inputs, made small on the command line.
    out = tmp_path / "ou.h5"
    mpirun(2, prefix / "bin" / "kinflow-simulate", prefix / "share" / "kinflow" / "inputs" / "langevin_ou.ini",
           "--quiet", "--run.steps=20", "--langevin.particles=500", f"--output.file={out}", "--output.every=10")
    with h5py.File(out, "r") as f:
        last = sorted(f["snapshots"])[-1]
        assert f["snapshots"][last]["position"].shape == (500, 3)


def test_external_project_builds_and_runs(prefix, tmp_path):
    build = tmp_path / "consumer"
    configure = [CMAKE, "-S", SRC / "tests" / "install", "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}",
                 "-DCMAKE_BUILD_TYPE=Release"]
    # The compilers kinflow was built with (a Kokkos build may require its own, e.g. nvcc_wrapper).
    for lang in ["C", "CXX"]:
        if cache(f"CMAKE_{lang}_COMPILER"):
            configure.append(f"-DCMAKE_{lang}_COMPILER={cache(f'CMAKE_{lang}_COMPILER')}")
    check(configure, timeout=300)
    check([CMAKE, "--build", build, "-j", "2"], timeout=600)
    exe = build / "kinflow-consumer"
    one, two = mpirun(1, exe).stdout, mpirun(2, exe).stdout
    m = re.fullmatch(r"kinflow-consumer: kinflow (\S+), particles 4000, mean_0 (\S+), variance_0 (\S+)\n", one)
    assert m, one
    assert m.group(1) == cache("CMAKE_PROJECT_VERSION")
    # Ornstein–Uhlenbeck from N(2, 1) to t = 1: mean 2/e, variance 1 (standard error ~0.016, ~0.022)
    assert abs(float(m.group(2)) - 2 / 2.718281828459045) < 0.08, one
    assert abs(float(m.group(3)) - 1.0) < 0.11, one
    # The engine's results do not depend on the rank count.
    assert one == two
