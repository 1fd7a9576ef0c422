"""How the site is built: one command, used by noxfile.py and by the tests.

``--strict`` turns every warning (a broken link or anchor, a page missing from
the nav) into a failed build. The build must not run with ``--quiet``: it
raises the log level above WARNING, so strict mode would count nothing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

STRICT_BUILD = ["mkdocs", "build", "--strict"]
# The Markdown extension that writes each page's box (mkdocs.yml), importable.
ENV = {"PYTHONPATH": "docs/_hooks", "NO_MKDOCS_2_WARNING": "1"}
# What a build reads: a site built from the same inputs is the same site.
INPUTS = ["docs", "snippets", "mkdocs.yml"]


def build_command(site: Path | str) -> list[str]:
    return [*STRICT_BUILD, "--site-dir", str(site)]


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    """Build the site of the project in ``root`` into ``site``; never raises."""
    return subprocess.run(
        build_command(site),
        cwd=root,
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
