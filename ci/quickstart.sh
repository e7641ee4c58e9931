#!/usr/bin/env bash
# The main job on a fresh machine: install, build, and run pipeline 1 (Keller–Segel aggregation:
# simulate 2D KS for several chi -> train w2map and fm conditioned on (chi, t), tfm on chi -> generate at an
# unseen and an extrapolated chi -> compare with fresh simulations, their floors and baselines),
# on 2 MPI ranks. Writes out/pipeline_ks/ (HDF5 files,
# summary.json, report.png/html) and prints where; tracked files are left alone. Maintainers:
# --update-readme also regenerates the README's result block and docs/images/pipeline_ks_report.png
# from this run (default deck only).
#   ci/quickstart.sh [--update-readme] [PIPELINE_DECK=inputs/pipeline_ks_aggregation.ini]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
default=inputs/pipeline_ks_aggregation.ini
update=0
if [ "${1:-}" = "--update-readme" ]; then update=1; shift; fi
deck=${1:-$default}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bash "$here/ci/install-deps.sh"
bash "$here/ci/build.sh" "$here/build"
cd "$here"
ranks=$(( $(nproc) < 2 ? 1 : 2 ))
py=/usr/bin/python3   # Debian's interpreter: numpy, h5py, matplotlib come from its packages
"$py" pipeline/kinflow_pipeline.py "$deck" --ranks "$ranks" --no-report
out=$(sed -n 's/^out *= *\([^ #]*\).*/\1/p' "$deck" | head -n 1)
if [ "$update" = 1 ] && [ "$deck" = "$default" ]; then
    "$py" postprocess/report.py "$out" --readme README.md --image docs/images/pipeline_ks_report.png
else
    "$py" postprocess/report.py "$out"
fi
echo "quickstart.sh: results in $here/$out (summary.json, report.png, report.html)"
