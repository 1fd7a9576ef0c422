"""Markdown extension: say on every FAQ page what to install and what it ran with.

Listed under ``markdown_extensions`` in mkdocs.yml, so every builder that reads
that file and runs Python-Markdown (MkDocs, Zensical) runs it; the nox sessions
put this folder on PYTHONPATH. Nothing here is typed by hand. The box under each
FAQ page's title is made at build time from

- the page's front matter (``requires:``, what a reader installs): the install
  command;
- the record `nox -s tests` writes after a full, passing run
  (``.nox/verified.json``): the versions the whole suite ran with;
- the record `nox -s matrix` writes (``.nox/matrix.json``): every version of
  each package, and every Python, the page's code ran with, passed or failed.

Without a record the box says so.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

RECORD_ENV = "FAQ_VERIFIED_RECORD"
DEFAULT_RECORD = ".nox/verified.json"
MATRIX_ENV = "FAQ_MATRIX_RECORD"
DEFAULT_MATRIX = ".nox/matrix.json"


NO_RECORD = (
    "构建本站时没有找到测试记录；"
    "运行 `nox -s tests` 后重新构建，这里会显示验证所用的版本。"
)
MATRIX_INTRO = (
    "版本矩阵（`nox -s matrix`）在只装了上面这些包的环境里运行本页代码，"
    "并运行本页的测试："
)
PYTHONS = "包的各个版本在 Python {python} 下运行；其他 Python 配各包的最新版本。"


def _load(variable: str, default: str) -> dict | None:
    path = Path(os.environ.get(variable, default))
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def install_command(requires: list[str]) -> str:
    """``pip install`` with each requirement quoted where a shell needs it."""
    quoted = [f'"{r}"' if set(r) & set("<>=!~;, []") else r for r in requires]
    return "pip install " + " ".join(quoted)


def _versions(entries: list[dict]) -> str:
    shown = []
    for entry in entries:
        if entry["passed"]:
            shown.append(f"{entry['version']} ✓")
        else:
            shown.append(f"{entry['version']} ✗")
    return " · ".join(shown)


def box(requires: list[str], record: dict | None, matrix: dict | None) -> str:
    """The Markdown of the box: an admonition, indented by four spaces."""
    lines = []
    if requires:
        lines += [f"安装：`{install_command(requires)}`"]
    if record is None:
        kind, title = "warning", "尚未验证"
        lines += ["", NO_RECORD]
    else:
        kind, title = "success", "已验证"
        lines += [
            "",
            f"本页的全部代码块已在 aiohttp {record['aiohttp']}、"
            f"Python {record['python']} 下运行并通过测试。",
        ]
    if matrix is None:
        lines += ["", "构建本站时没有找到版本矩阵的记录（`nox -s matrix`）。"]
    else:
        lines += ["", MATRIX_INTRO, ""]
        lines += ["| 包 | 运行过的版本 |", "| --- | --- |"]
        for name, entries in matrix["packages"].items():
            lines.append(f"| {name} | {_versions(entries)} |")
        failed = [
            (name, e) for name, entries in matrix["packages"].items()
            for e in entries if not e["passed"]
        ]  # fmt: skip
        if failed:
            lines += ["", "失败的版本与原因："]
            for name, entry in failed:
                lines.append(f"- {name} {entry['version']}：`{entry['reason']}`")
        if "Python" not in matrix["packages"]:
            lines += ["", f"以上都在 Python {matrix['python']} 下运行。"]
        else:
            lines += ["", PYTHONS.format(python=matrix["python"])]
    body = "\n".join(f"    {line}" if line else "" for line in lines)
    return f'!!! {kind} "{title}"\n{body}\n'


FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def faq_pages(docs_dir: str) -> dict[str, tuple[str, list[str]]]:
    """{first heading: (page name, its `requires:`)} for every FAQ page.

    A builder hands an extension the page's text without its front matter or
    its file name; the first heading, unique per page, says which page it is.
    Read again only when a page changed (each page's build asks).
    """
    paths = sorted(Path(docs_dir).glob("*.md"))
    key = tuple((str(p), p.stat().st_mtime_ns) for p in paths)
    if key not in _FAQ_PAGES:
        _FAQ_PAGES.clear()
        _FAQ_PAGES[key] = _read_faq_pages(paths)
    return _FAQ_PAGES[key]


_FAQ_PAGES: dict[tuple, dict[str, tuple[str, list[str]]]] = {}


def _read_faq_pages(paths: list[Path]) -> dict[str, tuple[str, list[str]]]:
    found = {}
    for path in paths:
        text = path.read_text("utf-8")
        meta = FRONT_MATTER.match(text)
        front = (yaml.safe_load(meta.group(1)) or {}) if meta else {}
        body = text[meta.end() :] if meta else text
        title = next(
            (line for line in body.splitlines() if line.startswith("# ")), None
        )
        if title is not None and path.name != "index.md":
            found[title.strip()] = (path.stem, list(front.get("requires", [])))
    return found


class BoxPreprocessor(Preprocessor):
    def __init__(self, md, docs_dir: str) -> None:
        super().__init__(md)
        self.docs_dir = docs_dir

    def run(self, lines: list[str]) -> list[str]:
        first = next((n for n, line in enumerate(lines) if line.strip()), None)
        if first is None:
            return lines
        page = faq_pages(self.docs_dir).get(lines[first].strip())
        if page is None:  # the home page, or not a page of this site
            return lines
        name, requires = page
        record = _load(RECORD_ENV, DEFAULT_RECORD)
        matrix = _load(MATRIX_ENV, DEFAULT_MATRIX)
        text = box(requires, record, None if matrix is None else matrix.get(name))
        return [*lines[: first + 1], "", *text.splitlines(), "", *lines[first + 1 :]]


class FaqBoxExtension(Extension):
    def __init__(self, **kwargs) -> None:
        self.config = {"docs_dir": ["docs", "the folder of the pages"]}
        super().__init__(**kwargs)

    def extendMarkdown(self, md) -> None:
        box_pre = BoxPreprocessor(md, self.getConfig("docs_dir"))
        # Before pymdownx.snippets (32) and the fenced-code preprocessors.
        md.preprocessors.register(box_pre, "faq_box", 40)


def makeExtension(**kwargs) -> FaqBoxExtension:
    return FaqBoxExtension(**kwargs)
