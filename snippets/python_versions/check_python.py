"""读已安装的 aiohttp 自己的元数据：它要求哪些 Python 版本，当前解释器是否满足。"""

import operator
import re
import sys
from importlib.metadata import metadata

OPERATORS = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
CLAUSE = re.compile(r"(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)")


def satisfies(python: tuple[int, ...], requires_python: str) -> bool:
    """python 是否满足 ">=3.10"、">=3.9, <4" 这类只含数字版本的 Requires-Python。"""
    for clause in requires_python.split(","):
        match = CLAUSE.fullmatch(clause.strip())
        if match is None:
            raise ValueError(f"这个脚本不处理这种写法：{clause.strip()!r}")
        op, text = match.groups()
        wanted = tuple(int(part) for part in text.split("."))
        width = max(len(python), len(wanted))
        left = python + (0,) * (width - len(python))
        right = wanted + (0,) * (width - len(wanted))
        if not OPERATORS[op](left, right):
            return False
    return True


def main(dist: str = "aiohttp") -> None:
    meta = metadata(dist)
    version = meta["Version"]
    requires = meta["Requires-Python"]
    listed = [
        classifier.rsplit(" :: ", 1)[1]
        for classifier in meta.get_all("Classifier") or []
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", classifier)
    ]
    running = sys.version_info
    ok = satisfies(running[:3], requires)
    print(f"{dist} {'.'.join(version.split('.')[:2])} 要求的 Python：{requires}")
    print(f"发布时标注支持的 Python：{'、'.join(listed) or '（未标注）'}")
    print(f"正在运行：Python/{running.major}.{running.minor} {dist}/{version}")
    print(f"当前解释器满足要求：{'是' if ok else '否'}")


if __name__ == "__main__":
    main()
