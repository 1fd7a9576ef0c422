"""The site's shape: code lives in snippets/, every snippet is shown and tested."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from pytest_codeblocks import extract_from_buffer

import claims
import pages
import sitebuild

FAQ_PAGES = [p for p in pages.pages() if p.name != "index.md"]
SNIPPET_FILES = sorted(
    p for p in pages.SNIPPETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts
)
SNIPPET_FOLDERS = sorted(
    {p.relative_to(pages.SNIPPETS).parts[0] for p in SNIPPET_FILES}
)


@pytest.mark.parametrize("page", pages.pages(), ids=lambda p: p.name)
def test_page_blocks_are_includes(page: Path) -> None:
    """No code is pasted into a page: a fenced block holds only --8<-- lines."""
    for block in extract_from_buffer(io.StringIO(page.read_text("utf-8"))):
        lines = [line for line in block.code.splitlines() if line.strip()]
        pasted = [line for line in lines if not pages.INCLUDE_LINE.match(line)]
        assert lines and not pasted, f"{page.name}:{block.lineno} pastes code: {pasted}"


@pytest.mark.parametrize("page", FAQ_PAGES, ids=lambda p: p.name)
def test_faq_page_includes_a_snippet(page: Path) -> None:
    assert pages.includes(page), f"{page.name} includes no snippet"


def test_every_snippet_is_on_a_page() -> None:
    included = {path for page in pages.pages() for path in pages.includes(page)}
    missing = [
        p.relative_to(pages.SNIPPETS).as_posix()
        for p in SNIPPET_FILES
        if p.relative_to(pages.SNIPPETS).as_posix() not in included
    ]
    assert not missing, f"snippets no page includes: {missing}"


def trailing_blanks(text: str) -> list[int]:
    """The numbers of the lines that end in spaces or tabs."""
    return [n for n, line in enumerate(text.splitlines(), 1) if line != line.rstrip()]


def test_shown_files_have_no_trailing_blanks() -> None:
    """A page's copy button drops them: the copied text would differ from the file."""
    found = {
        p.relative_to(pages.SNIPPETS).as_posix(): lines
        for p in SNIPPET_FILES
        if (lines := trailing_blanks(p.read_text("utf-8", "replace")))
    }
    assert not found, f"lines ending in blanks: {found}"


def test_the_blank_check_finds_what_it_guards() -> None:
    assert trailing_blanks("a\n    \nb \nc\t\nd") == [2, 3, 4]


@pytest.mark.parametrize("folder", SNIPPET_FOLDERS)
def test_one_name_for_page_snippets_and_tests(folder: str) -> None:
    """docs/<name>.md shows snippets/<name>/, tests/test_<name>.py tests it."""
    assert (pages.DOCS / f"{folder}.md").exists(), f"no page docs/{folder}.md"
    assert (pages.ROOT / "tests" / f"test_{folder}.py").exists(), (
        f"no tests/test_{folder}.py"
    )


def test_every_page_block_has_a_test() -> None:
    """The runner found blocks on every FAQ page (nothing silently uncollected)."""
    with_blocks = {block.page for block in pages.all_blocks()}
    assert {p.name for p in FAQ_PAGES} <= with_blocks


def test_claims_are_on_their_pages() -> None:
    """Every @pytest.mark.claim quotes words its page still says."""
    gone = claims.missing(claims.all_claims())
    assert not gone, "claims no longer on their page:\n" + "\n".join(
        f"{c.module}:{c.line} docs/{c.page}.md: {c.words!r}" for c in gone
    )


def test_a_claim_the_page_does_not_make_is_found(tmp_path: Path) -> None:
    """The check above fails for words the page does not (or no longer) say."""
    (tmp_path / "demo.md").write_text("# 演示？\n\n服务器回\n`404`。\n", "utf-8")
    module = tmp_path / "test_demo.py"
    module.write_text(
        "import pytest\n\n\n"
        '@pytest.mark.claim("服务器回 `404`")\ndef test_kept(): ...\n\n\n'
        '@pytest.mark.claim("服务器回 `500`")\ndef test_gone(): ...\n\n\n'
        '@pytest.mark.claim("演示", page="other")\ndef test_elsewhere(): ...\n',
        "utf-8",
    )
    found = claims.claims_in(module)
    assert [c.words for c in claims.missing(found, docs=tmp_path)] == [
        "服务器回 `500`",
        "演示",
    ]


def title(page: Path) -> str:
    """A page's first heading, as MkDocs names it in the nav."""
    return next(
        line[2:].strip()
        for line in page.read_text("utf-8").splitlines()
        if line.startswith("# ")
    )


@pytest.mark.parametrize("page", pages.pages(), ids=lambda p: p.name)
def test_a_link_naming_a_question_names_it_as_its_page_does(page: Path) -> None:
    """A link whose text is a question is the target's title, word for word."""
    links = re.findall(
        r"\[([^\]]+[?？])\]\(([a-z_]+)\.md(?:#[^)]*)?\)", page.read_text()
    )
    wrong = [
        (text, title(pages.DOCS / f"{target}.md"))
        for text, target in links
        if text != title(pages.DOCS / f"{target}.md")
    ]
    assert not wrong, f"{page.name}: link text ≠ title: {wrong}"


# A requirement range typed in prose: the generated box says what to install.
TYPED_RANGE = re.compile(r"\d+(\.\d+)*\s*(及以上|或以上|或更高|以上版本|\+)|>=\s*\d")


@pytest.mark.parametrize("page", FAQ_PAGES, ids=lambda p: p.name)
def test_requirements_are_declared_once(page: Path) -> None:
    """The front matter says what a reader installs; the prose types no range."""
    names = [Requirement(r).name for r in pages.requirements(page)]
    assert "aiohttp" in names, f"{page.name}: front matter `requires:` lacks aiohttp"
    typed = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(pages.prose(page.read_text()).splitlines(), 1)
        if TYPED_RANGE.search(line)
    ]
    assert not typed, f"{page.name} types a requirement range:\n" + "\n".join(typed)


@pytest.mark.parametrize("line", ["需要 aiohttp 3.9 及以上", "Python 3.10+", ">= 3.9"])
def test_a_typed_range_is_found(line: str) -> None:
    assert TYPED_RANGE.search(line)


def nav_files(entries) -> list[str]:
    """Every page file the nav of mkdocs.yml lists, in order."""
    found = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        found += nav_files(value) if isinstance(value, list) else [value]
    return found


def nav_problems(listed: list[str], on_disk: list[str]) -> dict[str, list[str]]:
    problems = {
        "in the nav, no such file": sorted(set(listed) - set(on_disk)),
        "a page the nav leaves out": sorted(set(on_disk) - set(listed)),
        "listed twice": sorted({f for f in listed if listed.count(f) > 1}),
    }
    return {kind: files for kind, files in problems.items() if files}


def test_nav_lists_every_page_once_and_nothing_else() -> None:
    """What MkDocs' strict mode checks and Zensical does not: nav and docs/ agree."""
    listed = nav_files(pages.mkdocs_config()["nav"])
    assert not nav_problems(listed, [p.name for p in pages.pages()])


def test_the_nav_check_finds_what_it_guards() -> None:
    nav = ["index.md", {"客户端": ["a.md", "gone.md", "a.md"]}]
    assert nav_problems(nav_files(nav), ["index.md", "a.md", "orphan.md"]) == {
        "in the nav, no such file": ["gone.md"],
        "a page the nav leaves out": ["orphan.md"],
        "listed twice": ["a.md"],
    }


GOOD_RUN = {"version": "3.14.5", "passed": True, "reason": "", "excluded": False}


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        ({"verified": {}, "matrix": None}, "no record of `nox -s matrix`"),
        ({"verified": None, "matrix": {}}, "no record of a full, passing"),
        ({"verified": {}, "matrix": {}}, "demo: the matrix record is not for"),
        (
            {"verified": {}, "matrix": {"demo": {"requires": ["aiohttp>=3.14"]}}},
            "demo: the matrix record is not for",
        ),
        (
            {
                "verified": {},
                "matrix": {
                    "demo": {
                        "requires": ["aiohttp>=3.13"],
                        "packages": {
                            "aiohttp": [
                                GOOD_RUN,
                                {**GOOD_RUN, "version": "3.13.0", "passed": False},
                            ]
                        },
                    }
                },
            },
            "demo: aiohttp 3.13.0",
        ),
        (
            {
                "verified": {},
                "matrix": {
                    "demo": {
                        "requires": ["aiohttp>=3.13"],
                        "packages": {"aiohttp": [{**GOOD_RUN, "excluded": True}]},
                    }
                },
            },
            "demo: aiohttp 3.14.5: passed",
        ),
    ],
)
def test_publishing_refuses_without_a_passing_record(records, problem) -> None:
    """`nox -s build` stops on each of these; a passing record lets it through."""
    found = sitebuild.record_problems(records, {"demo": ["aiohttp>=3.13"]})
    assert any(problem in line for line in found), found
    passing = {
        "verified": {},
        "matrix": {
            "demo": {"requires": ["aiohttp>=3.13"], "packages": {"aiohttp": [GOOD_RUN]}}
        },
    }
    assert sitebuild.record_problems(passing, {"demo": ["aiohttp>=3.13"]}) == []
