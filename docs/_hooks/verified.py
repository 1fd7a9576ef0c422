"""MkDocs hook: say on every FAQ page what the tests verified it with.

The versions are read at build time from the record that `nox -s tests`
writes after a full, passing run in its own environment (never typed by hand).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RECORD_ENV = "FAQ_VERIFIED_RECORD"
DEFAULT_RECORD = ".nox/verified.json"


def _record(config) -> dict | None:
    root = Path(config.config_file_path).parent
    path = root / os.environ.get(RECORD_ENV, DEFAULT_RECORD)
    if not path.exists():
        return None
    return json.loads(path.read_text("utf-8"))


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "index.md":
        return markdown
    record = _record(config)
    if record is None:
        line = (
            '!!! warning "尚未验证"\n'
            "    构建本站时没有找到测试记录；运行 `nox -s tests` 后重新构建，这里会显示验证所用的版本。\n"
        )
    else:
        line = (
            '!!! success "已验证"\n'
            f"    本页的全部代码块已在 aiohttp {record['aiohttp']}、"
            f"Python {record['python']} 下运行并通过测试。\n"
        )
    title, sep, rest = markdown.partition("\n")
    return f"{title}{sep}\n{line}\n{rest}" if title.startswith("# ") else line + markdown
