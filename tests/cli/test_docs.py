"""docs/deck-reference.md is every driver's --help verbatim: regenerated and compared, so a key
added, renamed or re-documented in the code without regenerating the page fails here."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(os.environ.get("KINFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("KINFLOW_BUILD_DIR", SRC / "build"))


def test_deck_reference_is_current():
    drivers = ["kinflow-simulate", "kinflow-train", "kinflow-sample", "kinflow-generate", "kinflow-compare"]
    missing = [d for d in drivers if not (BUILD / "drivers" / d).exists()]
    if missing:
        pytest.skip(f"drivers not built here: {missing} (the page documents a LibTorch build)")
    r = subprocess.run([sys.executable, str(SRC / "ci" / "gen_deck_reference.py"), str(BUILD), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_readme_links_resolve():
    """Every relative link of the README and the docs pages to a file of the repository exists
    (links to the shared design documents outside it are not checked)."""
    import re
    for page in [SRC / "README.md", *sorted((SRC / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or not (page.parent / target).resolve().is_relative_to(SRC.resolve()):
                continue
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"
