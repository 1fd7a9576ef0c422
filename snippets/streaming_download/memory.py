"""同一个文件下载两遍，比较 Python 分配的内存峰值：resp.read() 与 iter_chunked()。"""

import asyncio
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

URL = "http://127.0.0.1:8080/big.bin"
CHUNK_SIZE = 64 * 1024
MiB = 1024 * 1024


async def read_whole(session: aiohttp.ClientSession, url: str, path: Path) -> int:
    async with session.get(url) as resp:
        body = await resp.read()  # 整个响应体先放进内存
    with path.open("wb") as f:
        return f.write(body)


async def stream_to_file(session: aiohttp.ClientSession, url: str, path: Path) -> int:
    async with session.get(url) as resp:
        with path.open("wb") as f:
            async for chunk in resp.content.iter_chunked(CHUNK_SIZE):
                f.write(chunk)  # 内存里只有刚收到的这一块
            return f.tell()


async def peak_of(
    save: Callable[[aiohttp.ClientSession, str, Path], Awaitable[int]],
    session: aiohttp.ClientSession,
    url: str,
    path: Path,
) -> tuple[int, int]:
    """返回文件大小和 save() 期间 Python 分配的内存峰值。"""
    tracemalloc.start()
    try:
        size = await save(session, url, path)
        return size, tracemalloc.get_traced_memory()[1]  # （当前，峰值）里的峰值
    finally:
        tracemalloc.stop()


def about(peak: int) -> str:
    return "不到 1 MiB" if peak < MiB else f"约 {peak / MiB:.0f} MiB"


async def main(url: str = URL, path: Path = Path("big.bin")) -> None:
    async with aiohttp.ClientSession() as session:
        for save in (read_whole, stream_to_file):
            size, peak = await peak_of(save, session, url, path)
            name = save.__name__
            print(f"{name}()：文件 {size / MiB:.0f} MiB，内存峰值{about(peak)}")


if __name__ == "__main__":
    asyncio.run(main())
