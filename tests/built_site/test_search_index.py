"""The search index is built with jieba: Chinese text is split into words."""

import json
import re

import pytest

SEPARATOR = re.compile(r"[\s\u200b\-_,:!=\[\]()\"`/，。：；！？、（）]+")


@pytest.fixture(scope="session")
def index(site_dir):
    """The search index MkDocs wrote."""
    return json.loads((site_dir / "search" / "search_index.json").read_text("utf-8"))


def words(text: str) -> set[str]:
    return set(SEPARATOR.split(text))


def test_index_language_is_chinese(index):
    assert index["config"]["lang"] == ["zh"], index["config"]


def test_chinese_text_is_segmented(index):
    docs = {doc["location"]: doc for doc in index["docs"]}
    home = docs[""]
    assert "\u200b" in home["text"], home["text"][:200]
    # A sentence split into words: the words are searchable on their own.
    assert {"每个", "答案"} <= words(home["text"]), sorted(words(home["text"]))[:50]
