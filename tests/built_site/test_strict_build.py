"""The strict build fails on a broken link, a broken anchor or a page outside the nav.

One copy of the docs gets all three mistakes and is built with the command the
`docs` session uses (tests/sitebuild.py): each must be reported, and the build
must fail. The `docs` session's own build of the unchanged docs is the baseline.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pages
import sitebuild

# A mistake planted in docs/route_decorator.md (or a new page), and the
# warning MkDocs must print for it.
MISTAKES = {
    "[不存在的页面](no_such_page.md)": "'no_such_page.md', but the target",
    "[不存在的小节](prefix_route.md#no-such-heading)": "'#no-such-heading'",
    "orphan.md": 'not included in the "nav" configuration:\n  - orphan.md',
}


# The copy holds these pages only (the mistakes need no more; they link to no
# other page), with the same settings: a smaller build, the same checks.
KEPT = ["route_decorator.md", "prefix_route.md", "nested_apps.md"]


def copy_project(target: Path) -> None:
    """Copy what the build reads into ``target``, with the pages of KEPT only."""
    shutil.copytree(pages.SNIPPETS, target / "snippets")
    (target / "docs").mkdir()
    shutil.copytree(pages.DOCS / "_hooks", target / "docs" / "_hooks")
    for name in KEPT:
        shutil.copy(pages.DOCS / name, target / "docs" / name)
    config = (pages.ROOT / "mkdocs.yml").read_text("utf-8")
    nav = "nav:\n" + "".join(f"  - {name}\n" for name in KEPT)
    old_nav = re.compile(r"^nav:\n(?:[ #].*\n|\n)*?(?=\S)", re.M)
    config, found = old_nav.subn(nav + "\n", config, count=1)
    assert found == 1, "mkdocs.yml has no nav to trim"
    (target / "mkdocs.yml").write_text(config, "utf-8")


def test_planted_mistakes_fail_the_build(tmp_path: Path) -> None:
    copy_project(tmp_path)
    page = tmp_path / "docs" / "route_decorator.md"
    links = [m for m in MISTAKES if m.startswith("[")]
    page.write_text(page.read_text("utf-8") + "\n" + "\n".join(links) + "\n", "utf-8")
    (tmp_path / "docs" / "orphan.md").write_text("# 不在导航里的页面？\n", "utf-8")
    result = sitebuild.build(tmp_path, tmp_path / "site")
    assert result.returncode != 0, result.stdout
    assert f"Aborted with {len(MISTAKES)} warnings in strict mode!" in result.stdout, (
        result.stdout
    )
    for mistake, warning in MISTAKES.items():
        assert warning in result.stdout, (mistake, result.stdout)
