"""Read the site's pages the way MkDocs does and cut them into code blocks.

Includes (``--8<--``) are resolved by pymdownx.snippets' own preprocessor with
the settings in mkdocs.yml; the expanded text is cut into fenced blocks by
pytest-codeblocks' ``extract_from_buffer``. Everything that normalises output
before a comparison is declared here, in ``VOLATILE``.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType

import markdown
import yaml
from pytest_codeblocks import extract_from_buffer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = ROOT / "snippets"


@contextlib.contextmanager
def imported(folder: Path, *names: str) -> Iterator[dict[str, ModuleType]]:
    """Modules of one snippet folder, imported as a reader runs them: from there.

    Other folders have modules of the same names (every page has its app.py):
    these are imported afresh and forgotten afterwards.
    """
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path.insert(0, str(folder))
    try:
        yield {name: importlib.import_module(name) for name in names}
    finally:
        sys.path.remove(str(folder))
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


# The port a page tells the reader to use; tests substitute a free one.
READER_PORT = 8080
READER_HOSTS = ("127.0.0.1", "localhost")

# Environment variables a program on a page may read; tests/test_pages.py gives
# each a real value (a real server it starts).
ENV_VARS = ["REDIS_URL"]

# Parts of an output that change from run to run or machine to machine.
# Applied to what a page shows and to what the run printed, before comparing.
VOLATILE = [
    (re.compile(r"^(Date): .*$", re.M), r"\1: <date>"),
    (re.compile(r"Python/\d+\.\d+ aiohttp/[\w.]+"), "Python/<ver> aiohttp/<ver>"),
    (re.compile(r"(127\.0\.0\.1|localhost):\d+"), r"\1:<port>"),
    (re.compile(r'File "/[^"]*/([^/"]+)"'), r'File "\1"'),
    (re.compile(r"^/\S*/([^/\s]+\.py):", re.M), r"\1:"),
    # Python's default repr names the object's address: <... object at 0x7f...>
    (re.compile(r"( object at )0x[0-9a-f]+>"), r"\g<1>0x…>"),
    # aiohttp's "Unclosed connector" lists the pooled connections, with their
    # addresses and loop times (a deque in newer aiohttp, a list in older)
    (re.compile(r"^(connections: \[).*\]$", re.M), r"\1…]"),
    # CPython's own source line in an ssl error differs by Python release
    (re.compile(r"\(_ssl\.c:\d+\)"), "(_ssl.c:…)"),
    (re.compile(r"[ \t]+$", re.M), ""),
]

INCLUDE_LINE = re.compile(r'^\s*-{1,}8<-{1,}\s+"([^"]+)"\s*$')


def normalize(text: str) -> str:
    """Return ``text`` with its volatile parts replaced by placeholders."""
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text.strip("\n")


def to_test_port(text: str, port: int) -> str:
    """Point the reader's ``127.0.0.1:8080`` at the port the test server uses."""
    for host in READER_HOSTS:
        text = text.replace(f"{host}:{READER_PORT}", f"127.0.0.1:{port}")
    return text


@dataclass
class Block:
    """One fenced block of a page, after its includes are resolved."""

    page: str
    number: int
    lang: str
    title: str | None
    code: str
    expected_output: str | None
    not_runnable: dict[str, str] | None
    folder: list[Block] = field(default_factory=list, repr=False)
    server: Block | None = field(default=None, repr=False)
    # A program that serves until Ctrl+C without `web.run_app` (an AppRunner of
    # its own), marked on its page with <!--pytest.mark.server-->.
    marked_server: bool = False

    @property
    def id(self) -> str:
        return f"{self.page}#{self.number}-{self.lang}"

    @property
    def is_server(self) -> bool:
        return self.lang == "python" and (
            self.marked_server or "web.run_app(" in self.code
        )

    @property
    def filename(self) -> str:
        return self.title or "app.py"

    @property
    def env_vars(self) -> list[str]:
        """The variables of ENV_VARS that this block's programs read."""
        sources = [self.code, *(b.code for b in self.folder)]
        if self.server is not None:
            sources.append(self.server.code)
        return [var for var in ENV_VARS if any(var in s for s in sources)]


@cache
def mkdocs_config() -> dict:
    """mkdocs.yml, as data."""
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("", lambda *_: None)  # ignore !!python/name tags
    return yaml.load((ROOT / "mkdocs.yml").read_text("utf-8"), loader)


@cache
def snippet_config() -> dict:
    """The pymdownx.snippets settings from mkdocs.yml."""
    for ext in mkdocs_config()["markdown_extensions"]:
        if isinstance(ext, dict) and "pymdownx.snippets" in ext:
            settings = dict(ext["pymdownx.snippets"])
            settings["base_path"] = [str(ROOT / p) for p in settings["base_path"]]
            return settings
    raise LookupError("mkdocs.yml does not enable pymdownx.snippets")


def expand(page: Path) -> str:
    """Resolve the page's includes exactly as the site build does."""
    md = markdown.Markdown(
        extensions=["pymdownx.snippets"],
        extension_configs={"pymdownx.snippets": snippet_config()},
    )
    lines = page.read_text("utf-8").split("\n")
    return "\n".join(md.preprocessors["snippet"].run(lines))


def _markers(marks: list[str]) -> tuple[dict[str, str] | None, bool]:
    """A block's page markers: not_runnable's arguments, and whether it is marked
    ``<!--pytest.mark.server-->``."""
    not_runnable, server = None, False
    for mark in marks:
        node = ast.parse(mark, mode="eval").body
        name = ast.unparse(node.func if isinstance(node, ast.Call) else node)
        if name.endswith("not_runnable") and isinstance(node, ast.Call):
            not_runnable = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        elif name == "pytest.mark.server":
            server = True
        else:
            raise ValueError(f"unknown marker on a page: {mark}")
    return not_runnable, server


def _lang_and_title(syntax: str | None) -> tuple[str, str | None]:
    lang, _, attrs = (syntax or "").partition(" ")
    title = re.search(r'title="([^"]+)"', attrs)
    return lang or "text", title.group(1) if title else None


def page_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, linked to the files and server before it."""
    blocks: list[Block] = []
    folder: list[Block] = []
    server: Block | None = None
    raw = extract_from_buffer(io.StringIO(expand(page)))
    for number, raw_block in enumerate(raw, start=1):
        lang, title = _lang_and_title(raw_block.syntax)
        not_runnable, marked_server = _markers(raw_block.marks)
        block = Block(
            page=page.name,
            number=number,
            lang=lang,
            title=title,
            code=raw_block.code,
            expected_output=raw_block.expected_output,
            not_runnable=not_runnable,
            folder=list(folder),
            server=server,
            marked_server=marked_server,
        )
        blocks.append(block)
        if block.not_runnable is None and block.lang == "python":
            folder.append(block)
            if block.is_server:
                server = block
    return blocks


# What is not prose: front matter, fenced blocks, inline code, link targets,
# HTML comments.
NOT_PROSE = [
    re.compile(r"\A---\n.*?\n---\n", re.S),
    re.compile(r"^(\s*)(`{3,}|~{3,}).*?^\1\2\s*$", re.S | re.M),
    re.compile(r"`[^`\n]+`"),
    re.compile(r"\]\([^)]*\)|<https?://[^>]*>"),
    re.compile(r"<!--.*?-->", re.S),
]


def prose(markdown: str) -> str:
    """``markdown`` with everything that is not prose blanked out (lines kept)."""
    for pattern in NOT_PROSE:
        markdown = pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), markdown)
    return markdown


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def front_matter(page: Path) -> dict:
    found = FRONT_MATTER.match(page.read_text("utf-8"))
    return (yaml.safe_load(found.group(1)) or {}) if found else {}


def requirements(page: Path) -> list[str]:
    """What a reader installs to run the page's programs (PEP 508, front matter)."""
    return list(front_matter(page).get("requires", []))


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in page_blocks(page)]


def includes(page: Path) -> list[str]:
    """The snippet paths a page includes, as written (sections cut off)."""
    found = []
    for line in page.read_text("utf-8").splitlines():
        m = INCLUDE_LINE.match(line)
        if m:
            path = re.sub(r":[A-Za-z0-9_:,-]*$", "", m.group(1))
            found.append(path)
    return found
