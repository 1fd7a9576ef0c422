"""Claims: a sentence of a page that a test proves, named on the test.

A test carries ``@pytest.mark.claim("<words copied from the page>")``. The words
belong to the page of the test's module (``tests/test_<name>.py`` proves
``docs/<name>.md``); a module that proves several pages says which with
``page="<name>"``. ``tests/test_structure.py`` fails when the words are no longer
on that page, and the test summary counts the claims whose tests passed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pages

# Line breaks and indentation in Markdown are not part of a sentence.
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Claim:
    module: str
    line: int
    page: str
    words: str


def squeeze(text: str) -> str:
    """``text`` without white space, so a wrapped sentence still matches."""
    return _SPACE.sub("", text)


def default_page(module: Path) -> str | None:
    name = module.stem
    return name.removeprefix("test_") if name.startswith("test_") else None


def page_of(module: Path, mark) -> str:
    """The page a ``claim`` mark on a test of ``module`` speaks about."""
    page = mark.kwargs.get("page") or default_page(Path(module))
    if page is None:
        raise ValueError(f"{module}: a claim outside tests/test_<page>.py names page=")
    return page


def _claim_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("mark.claim"):
            yield node


def claims_in(module: Path, source: str | None = None) -> list[Claim]:
    """Every claim written in ``module`` (its words must be literal strings)."""
    source = module.read_text("utf-8") if source is None else source
    found = []
    for call in _claim_calls(ast.parse(source)):
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        if len(call.args) != 1 or set(kwargs) - {"page"}:
            raise ValueError(f"{module}:{call.lineno}: claim(words, page=...) only")
        words = ast.literal_eval(call.args[0])
        page = kwargs.get("page") or default_page(module)
        if not isinstance(words, str) or not words.strip() or page is None:
            raise ValueError(f"{module}:{call.lineno}: a claim needs words and a page")
        found.append(Claim(module.name, call.lineno, page, words))
    return found


def all_claims() -> list[Claim]:
    return [
        claim
        for module in sorted((pages.ROOT / "tests").glob("test_*.py"))
        for claim in claims_in(module)
    ]


def missing(claims: list[Claim], docs: Path = pages.DOCS) -> list[Claim]:
    """The claims whose words are not (or no longer) on their page."""
    texts: dict[str, str] = {}
    for claim in claims:
        if claim.page not in texts:
            page = docs / f"{claim.page}.md"
            texts[claim.page] = (
                squeeze(page.read_text("utf-8")) if page.exists() else ""
            )
    return [c for c in claims if not c.words or squeeze(c.words) not in texts[c.page]]
