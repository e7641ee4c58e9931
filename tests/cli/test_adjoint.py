"""kinflow-simulate with an [adjoint] section (adjoint DSMC, issue 17): the gradient and its standard error
printed and stored as root attributes of the output file, checked against the exact BKW value
(Maxwell molecules, J = <|v|^4> = T^2 m4(t), dJ/dT = 2 T m4, m4 = 30K - 15K^2) at 1 and 2 ranks, and
one-line errors for unsupported combinations."""
import math
import os
import subprocess
from pathlib import Path

import h5py
import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
EXE = BUILD / "drivers" / "kinflow-simulate"
MPIEXEC = os.environ.get("KINFLOW_MPIEXEC", "mpiexec")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", KOKKOS_DISABLE_WARNINGS="1")

DECK = """[run]
engine = dsmc
seed = 7
steps = 8
dt = 0.25
[output]
file = {out}
every = 8
[dsmc]
scheme = {scheme}
kernel = maxwell
init = bkw
temperature = 1.5
bkw_t0 = 7
particles = 10000
shuffle_every = 2
[adjoint]
objective = moment:4
parameters = temperature, bkw_K0
replicas = 6
"""


def run(args, ranks=1):
    cmd = [MPIEXEC, "-q", "-n", str(ranks), "--oversubscribe", str(EXE), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)


@pytest.mark.parametrize("scheme,ranks", [("ntc", 1), ("nanbu_babovsky", 1), ("ntc", 2)])
def test_gradient_printed_stored_and_exact(tmp_path, scheme, ranks):
    out = tmp_path / "adj.h5"
    deck = tmp_path / "deck.ini"
    deck.write_text(DECK.format(out=out, scheme=scheme))
    r = run([deck], ranks)
    assert r.returncode == 0, r.stderr
    assert "adjoint dJ/dtemperature = " in r.stdout and "particle-steps/s" in r.stdout
    with h5py.File(out, "r") as f:
        J, g, se = (float(f.attrs[k]) for k in ("adjoint_objective", "adjoint_gradient_temperature",
                                                "adjoint_gradient_temperature_se"))
        gk, sek = float(f.attrs["adjoint_gradient_bkw_K0"]), float(f.attrs["adjoint_gradient_bkw_K0_se"])
    K0, T, n, dt = 1 - math.exp(-7 / 6), 1.5, 8, 0.25
    decay = math.exp(-n * dt / 6) if scheme == "ntc" else (1 - dt / 3) ** (n / 2)
    K = 1 - (1 - K0) * decay
    m4 = 30 * K - 15 * K * K
    assert abs(J - T * T * m4) < 0.01 * J
    assert 0 < se < 0.02 * g and abs(g - 2 * T * m4) < 3 * se
    assert abs(gk - T * T * (30 - 30 * K) * decay) < 3 * sek


@pytest.mark.parametrize("override,key", [
    ("--adjoint.objective=pressure", "adjoint.objective"),
    ("--adjoint.parameters=temperature_y", "adjoint.parameters"),
    ("--dsmc.kernel=hard_sphere --adjoint.replicas=1", "adjoint.replicas"),
    ("--adjoint.parameters=omega", "adjoint.parameters"),           # maxwell kernel
    ("--adjoint.parameters=collision_rate", "adjoint.parameters"),  # ntc
    ("--adjoint.parameters=alpha", "adjoint.parameters"),           # maxwell kernel: no VSS alpha
    ("--adjoint.objective=poly:vx^^2", "adjoint.objective"),
    ("--adjoint.objective=poly:2vx+vq", "adjoint.objective"),
])
def test_bad_adjoint_keys_one_line(tmp_path, override, key):
    out = tmp_path / "adj.h5"
    deck = tmp_path / "deck.ini"
    deck.write_text(DECK.format(out=out, scheme="ntc"))
    r = run([deck, *override.split()])
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], r.stderr
    assert not out.exists()


def test_poly_objective_and_axis_parameters(tmp_path):
    """objective = poly:... spelling out <|v|^4> gives the BKW gradient dJ/dT = 2 T m4 (NTC), and the
    per-axis parameters of a tri-Maxwellian and the drift are stored under their names."""
    out = tmp_path / "adj.h5"
    deck = tmp_path / "deck.ini"
    deck.write_text(DECK.format(out=out, scheme="ntc"))
    r = run([deck, "--adjoint.objective=poly:vx^4 + vy^4 + vz^4 + 2*vx^2*vy^2 + 2*vx^2*vz^2 + 2*vy^2*vz^2",
             "--adjoint.parameters=temperature"])
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as f:
        g, se = float(f.attrs["adjoint_gradient_temperature"]), float(f.attrs["adjoint_gradient_temperature_se"])
    K = 1 - (1 - (1 - math.exp(-7 / 6))) * math.exp(-8 * 0.25 / 6)
    assert 0 < se < 0.02 * g and abs(g - 2 * 1.5 * (30 * K - 15 * K * K)) < 3 * se
    out.unlink()
    r = run([deck, "--dsmc.init=bimaxwellian", "--dsmc.temperature_x=2", "--dsmc.temperature_y=1",
             "--dsmc.temperature_z=0.5", "--dsmc.drift=0.4,0,-0.3", "--dsmc.particles=2000", "--adjoint.replicas=2",
             "--adjoint.objective=component4", "--adjoint.parameters=temperature_y,temperature_z,drift_x"])
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as f:
        for name in ("temperature_y", "temperature_z", "drift_x"):
            assert math.isfinite(float(f.attrs["adjoint_gradient_" + name])), name
            assert float(f.attrs["adjoint_gradient_" + name + "_se"]) > 0, name


def test_kernel_parameter_gradient(tmp_path):
    """adjoint.parameters = omega, d_ref (VHS, NTC): the score-term gradients are stored with their
    standard errors; T_x relaxes more slowly for a larger omega (T_ref below the gas temperature)
    and faster for a larger d_ref."""
    out = tmp_path / "adj.h5"
    deck = tmp_path / "deck.ini"
    deck.write_text(DECK.format(out=out, scheme="ntc"))
    r = run([deck, "--dsmc.kernel=vhs", "--dsmc.omega=0.7", "--dsmc.T_ref=0.25", "--dsmc.init=bimaxwellian",
             "--dsmc.temperature=1", "--dsmc.temperature_x=2", "--dsmc.particles=200", "--run.steps=5",
             "--run.dt=0.04", "--output.every=5", "--adjoint.objective=temperature_x",
             "--adjoint.parameters=omega,d_ref", "--adjoint.replicas=1500"])
    assert r.returncode == 0, r.stderr
    assert "adjoint dJ/domega = " in r.stdout and "adjoint dJ/dd_ref = " in r.stdout
    with h5py.File(out, "r") as f:
        g, se = float(f.attrs["adjoint_gradient_omega"]), float(f.attrs["adjoint_gradient_omega_se"])
        gd, sed = float(f.attrs["adjoint_gradient_d_ref"]), float(f.attrs["adjoint_gradient_d_ref_se"])
    assert 0 < se < 0.2 and g > 2 * se
    assert 0 < sed < 0.2 and gd < -2 * sed
