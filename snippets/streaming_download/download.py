"""把大文件流式下载到磁盘：边收边写，显示进度，断了用 Range 续传，最后核对 sha256。"""

import asyncio
import hashlib
import re
from pathlib import Path

import aiohttp

URL = "http://127.0.0.1:8080/big.bin"
CHUNK_SIZE = 64 * 1024  # 每次从响应体取多少字节
MiB = 1024 * 1024
# 总时间不设上限（默认的 5 分钟对大文件不够），只限制连接和每一次读的等待
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class DownloadError(Exception):
    """服务器的回答对不上：Content-Range 不是请求的那一段，或者 sha256 不符。"""


class Progress:
    """每下载完总大小的四分之一打印一行；不知道总大小时什么也不打印。"""

    def __init__(self, done: int, total: int | None, steps: int = 4) -> None:
        self.done, self.total, self.steps = done, total, steps
        self.shown = done * steps // total if total else 0

    def add(self, size: int) -> None:
        self.done += size
        while self.total and self.shown < self.done * self.steps // self.total:
            self.shown += 1
            mark = self.total * self.shown // self.steps
            print(f"  {100 * self.shown // self.steps:3d}%  {mark / MiB:5.1f} MiB")


async def fetch(
    session: aiohttp.ClientSession, url: str, path: Path, chunk_size: int = CHUNK_SIZE
) -> None:
    """把 url 下载到 path。path 里已经有一部分时，只请求缺的部分，接在后面写。"""
    with path.open("ab") as f:  # 没有就新建；已有的部分留着，写入接在末尾
        have = f.tell()
        headers = {"Range": f"bytes={have}-"} if have else {}
        async with session.get(url, headers=headers) as resp:
            content_range = resp.headers.get("Content-Range", "")
            if resp.status == 416 and content_range == f"bytes */{have}":
                print(f"{path} 已经下载完整：{have} 字节")
                return
            resp.raise_for_status()
            if resp.status == 206:
                found = CONTENT_RANGE.fullmatch(content_range)
                if found is None or int(found[1]) != have:
                    raise DownloadError(
                        f"请求第 {have} 字节起，回答的是 {content_range!r}"
                    )
                total = int(found[3])
                print(f"GET {url}：206，Content-Range: {content_range}，接着下载")
            else:  # 200：服务器不支持 Range（或者不理会它），发来的是整个文件
                have, total = 0, resp.content_length
                f.truncate(0)
                print(f"GET {url}：{resp.status}，从头下载，共 {total} 字节")
            progress = Progress(have, total)
            async for chunk in resp.content.iter_chunked(chunk_size):
                f.write(chunk)
                progress.add(len(chunk))


async def download(
    session: aiohttp.ClientSession,
    url: str,
    path: Path,
    *,
    attempts: int = 5,
    delay: float = 1.0,
) -> None:
    """fetch()，连接断了就等 delay 秒再续传，最多下载 attempts 次。"""
    for attempt in range(1, attempts + 1):
        try:
            return await fetch(session, url, path)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            if attempt == attempts:
                raise
            print(f"第 {attempt} 次下载中断（{type(exc).__name__}），{delay} 秒后续传")
            await asyncio.sleep(delay)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MiB):
            digest.update(block)
    return digest.hexdigest()


async def check_sha256(session: aiohttp.ClientSession, url: str, path: Path) -> str:
    """和服务器在 url.sha256 给出的摘要比较；不符就删掉文件。"""
    async with session.get(f"{url}.sha256") as resp:
        resp.raise_for_status()
        expected = (await resp.text()).split()[0]
    actual = await asyncio.to_thread(sha256_of, path)
    if actual != expected:
        await asyncio.to_thread(path.unlink)
        raise DownloadError(f"sha256 不符：应为 {expected}，下载的是 {actual}，已删除")
    return actual


async def main(url: str = URL, path: Path = Path("big.bin")) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        await download(session, url, path)
        digest = await check_sha256(session, url, path)
    print(f"sha256 与服务器给出的一致：{digest}")


if __name__ == "__main__":
    asyncio.run(main())
