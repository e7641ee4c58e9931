#!/usr/bin/env bash
# The main job on a fresh machine: install, build, run the shipped 3D Ornstein–Uhlenbeck deck on
# 2 MPI ranks and plot its moments (exact curves overlaid) and densities.
#   ci/quickstart.sh [DECK=inputs/langevin_ou.ini]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deck=${1:-inputs/langevin_ou.ini}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bash "$here/ci/install-deps.sh"
bash "$here/ci/build.sh" "$here/build"
cd "$here"
ranks=$(( $(nproc) < 2 ? 1 : 2 ))
mpiexec -q -n "$ranks" --oversubscribe build/drivers/kinflow-simulate "$deck"
out=$(sed -n 's/^file *= *\([^ #]*\).*/\1/p' "$deck" | head -n 1)
/usr/bin/python3 postprocess/plot_moments.py "$out"
/usr/bin/python3 postprocess/plot_density.py "$out"
