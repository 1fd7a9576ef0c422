"""把普通 python 默认隐藏的 NotAppKeyWarning 收集起来，逐条打印。"""

import asyncio
import linecache
import warnings
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer


async def main(create_app: Callable[[], web.Application]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", web.NotAppKeyWarning)
        # 创建应用、启动它（运行 cleanup_ctx）、处理一个请求，三处都可能写入键
        async with TestClient(TestServer(create_app())) as client:
            async with client.get("/") as resp:
                await resp.read()
    for w in caught:
        code = linecache.getline(w.filename, w.lineno).strip()
        print(f"{Path(w.filename).name}:{w.lineno}: {code}")
        print(f"    {w.category.__name__}: {str(w.message).splitlines()[0]}")
    if not caught:
        print("没有 NotAppKeyWarning")


if __name__ == "__main__":
    import after
    import before

    for module in (before, after):
        print(f"== {module.__name__}.py ==")
        asyncio.run(main(module.create_app))
