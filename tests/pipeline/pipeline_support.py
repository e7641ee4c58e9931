"""What the pipeline tests share: the source and build trees (KINFLOW_SOURCE_DIR,
KINFLOW_BUILD_DIR), the runner and report scripts, the skip marker for builds without LibTorch
and one call of the runner."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))
PIPELINE = SRC / "pipeline" / "kinflow_pipeline.py"
REPORT = SRC / "postprocess" / "report.py"

needs_train = pytest.mark.skipif(not (BUILD / "drivers" / "kinflow-train").exists(),
                                 reason="needs a build with LibTorch (kinflow-train)")


def pipeline(*args):
    """kinflow_pipeline.py ARGS --build BUILD (15 minutes at most)."""
    return subprocess.run([sys.executable, str(PIPELINE), *map(str, args), "--build", str(BUILD)],
                          capture_output=True, text=True, timeout=900)
