"""MkDocs hook: say on every FAQ page what to install and what it was tested with.

Nothing here is typed by hand. The box under each FAQ page's title is made at
build time from

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
from pathlib import Path

RECORD_ENV = "FAQ_VERIFIED_RECORD"
DEFAULT_RECORD = ".nox/verified.json"
MATRIX_ENV = "FAQ_MATRIX_RECORD"
DEFAULT_MATRIX = ".nox/matrix.json"


def _load(config, variable: str, default: str) -> dict | None:
    root = Path(config.config_file_path).parent
    path = root / os.environ.get(variable, default)
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
        lines += ["", "构建本站时没有找到测试记录；运行 `nox -s tests` 后重新构建，这里会显示验证所用的版本。"]
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
        lines += ["", "版本矩阵（`nox -s matrix`）在只装了上面这些包的环境里运行本页代码和本页的测试：", ""]
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
            lines += ["", f"包的各个版本在 Python {matrix['python']} 下运行；其他 Python 配各包的最新版本。"]
    body = "\n".join(f"    {line}" if line else "" for line in lines)
    return f'!!! {kind} "{title}"\n{body}\n'


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "index.md":
        return markdown
    name = Path(page.file.src_uri).stem
    record = _load(config, RECORD_ENV, DEFAULT_RECORD)
    matrix = _load(config, MATRIX_ENV, DEFAULT_MATRIX)
    requires = list(page.meta.get("requires", []))
    text = box(requires, record, None if matrix is None else matrix.get(name))
    title, sep, rest = markdown.partition("\n")
    return f"{title}{sep}\n{text}\n{rest}" if title.startswith("# ") else text + markdown
