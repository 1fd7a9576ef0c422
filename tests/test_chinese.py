"""Chinese that reads as one book: one word for one thing, full-width punctuation.

The words are kept in GLOSSARY.md; this module reads them from there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pages

GLOSSARY = pages.ROOT / "GLOSSARY.md"
CJK = "\u3400-\u4dbf\u4e00-\u9fff"
# A half-width mark right after a Chinese character.
HALF_WIDTH = re.compile(f"[{CJK}][?,:;!]")
SNIPPET_TEXT = sorted(
    p
    for p in pages.SNIPPETS.rglob("*")
    if p.is_file() and p.suffix in {".py", ".txt", ".console", ".conf", ".md"}
)


def rejected_words(glossary: str) -> dict[str, str]:
    """{rejected: chosen} from the glossary's table."""
    found = {}
    for line in glossary.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in {"采用", "---"}:
            for word in filter(None, (w.strip() for w in cells[1].split(","))):
                found[word] = cells[0]
    return found


REJECTED = rejected_words(GLOSSARY.read_text("utf-8"))


def problems(text: str, *, terms: dict[str, str], whole_text: bool) -> list[str]:
    """Half-width marks after Chinese, and rejected words, line by line."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for m in HALF_WIDTH.finditer(line):
            found.append(f"{number}: half-width {m.group()!r}: {line.strip()}")
        for word, chosen in terms.items():
            # Latin words count only as whole words (websocket_pubsub is a name).
            pattern = (
                rf"(?<![\w/.-]){re.escape(word)}(?![\w/.-])"
                if word.isascii()
                else re.escape(word)
            )
            if re.search(pattern, line) and (whole_text or not word.isascii()):
                found.append(f"{number}: {word!r} (use {chosen!r}): {line.strip()}")
    return found


def test_glossary_is_read() -> None:
    assert {"websocket": "WebSocket", "废弃": "弃用", "其它": "其他"}.items() <= (
        REJECTED.items()
    ), REJECTED


@pytest.mark.parametrize("page", pages.pages(), ids=lambda p: p.name)
def test_page_prose(page: Path) -> None:
    text = pages.prose(page.read_text("utf-8"))
    found = problems(text, terms=REJECTED, whole_text=True)
    assert not found, f"{page.name}:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "path", SNIPPET_TEXT, ids=lambda p: p.relative_to(pages.SNIPPETS).as_posix()
)
def test_snippet_chinese(path: Path) -> None:
    """Chinese in comments and program output follows the same rules."""
    found = problems(path.read_text("utf-8"), terms=REJECTED, whole_text=False)
    assert not found, f"{path.name}:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "page", [p for p in pages.pages() if p.name != "index.md"], ids=lambda p: p.name
)
def test_title_is_a_question(page: Path) -> None:
    title = page.read_text("utf-8").split("\n---\n")[-1].lstrip()
    title = next(line for line in title.splitlines() if line.startswith("# "))
    assert is_a_question(title), title


def is_a_question(title: str) -> bool:
    """Ends with ？; no half-width marks outside inline code (code keeps its own)."""
    words = re.sub(r"`[^`]*`", "", title)
    return title.endswith("？") and not re.search(r"[?,:;!]", words)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("# 为什么会报 `BadStatusLine: x` 呢？", True),
        ("# 为什么会报 BadStatusLine: x 呢？", False),
        ("# 怎样限制并发,为什么？", False),
        ("# 怎样限制并发?", False),
        ("# 怎样限制并发。", False),
    ],
)
def test_title_check_finds_what_it_guards(title: str, expected: bool) -> None:
    assert is_a_question(title) is expected, title


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("服务器回 404 吗?", ["half-width"]),
        ("连接被关闭,然后重连", ["half-width"]),
        ("这个 websocket 被关闭", ["'websocket'"]),
        ("这个 API 已经废弃", ["'废弃'"]),
        ("见 `websocket_pubsub` 与 [其他](websocket_pubsub.md)。", []),
        ("```python\nprint('a,b')  # 注释,\n```\n", []),
    ],
)
def test_checks_find_what_they_guard(text: str, expected: list[str]) -> None:
    """Each rule fails on a planted mistake and passes correct text."""
    found = problems(pages.prose(text), terms=REJECTED, whole_text=True)
    assert len(found) == len(expected), found
    for want, got in zip(expected, found, strict=True):
        assert want in got, got
