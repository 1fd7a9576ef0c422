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


def record_problems(
    records: dict[str, dict | None], faq_pages: dict[str, list]
) -> list[str]:
    """Why a site built now must not be published (empty: it may).

    ``records`` holds the tests' record (``verified``) and the matrix's
    (``matrix``), None where missing; ``faq_pages`` maps each FAQ page to the
    requirements its front matter declares now.
    """
    problems = []
    if records.get("verified") is None:
        problems.append("no record of a full, passing `nox -s tests`")
    matrix = records.get("matrix")
    if matrix is None:
        return [*problems, "no record of `nox -s matrix`"]
    for page, requires in faq_pages.items():
        entry = matrix.get(page)
        if entry is None or entry["requires"] != requires:
            problems.append(f"{page}: the matrix record is not for its `requires:`")
            continue
        for package, runs in entry["packages"].items():
            for run in runs:
                if run["passed"] == run.get("excluded", False):
                    what = f"{package} {run['version']}"
                    problems.append(f"{page}: {what}: {run['reason'] or 'passed'}")
    return problems
