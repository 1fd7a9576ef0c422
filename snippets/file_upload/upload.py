"""上传 40 MiB 的文件：先交给用 request.post() 的 /form，再交给边收边写的 /upload。"""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

URL = "http://127.0.0.1:8080"
MiB = 1024 * 1024
SIZE = 40 * MiB
TOO_BIG = 65 * MiB  # 比服务器给每个文件定的 64 MiB 上限多 1 MiB


def make_file(path: Path, size: int) -> str:
    """写一个 size 字节、每次内容都一样的文件，返回它的 sha256。"""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for number, start in enumerate(range(0, size, MiB)):
            seed = number.to_bytes(8, "big")
            block = hashlib.shake_128(seed).digest(min(MiB, size - start))
            f.write(block)
            digest.update(block)
    return digest.hexdigest()


async def zeros(size: int) -> AsyncIterator[bytes]:
    """size 个零字节，每次交出 1 MiB：不用在磁盘上准备一个这么大的文件。"""
    for start in range(0, size, MiB):
        yield bytes(min(MiB, size - start))


async def send(
    session: aiohttp.ClientSession,
    route: str,
    content: Any,
    filename: str,
    *,
    quote_fields: bool = True,
) -> tuple[int, Any]:
    """用 multipart/form-data 上传一个文件；返回状态码和响应体（JSON 或文本）。"""
    form = aiohttp.FormData(quote_fields=quote_fields)
    form.add_field(
        "file", content, filename=filename, content_type="application/octet-stream"
    )
    async with session.post(route, data=form) as resp:
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, (await resp.text()).strip()


async def send_file(
    session: aiohttp.ClientSession, route: str, path: Path
) -> tuple[int, Any]:
    with path.open("rb") as f:  # 打开的文件交给 FormData：aiohttp 发送时一块一块地读
        return await send(session, route, f, path.name)


async def stored(session: aiohttp.ClientSession) -> set[str]:
    async with session.get("/uploads") as resp:
        return set(await resp.json())


async def main(
    url: str = URL,
    path: Path = Path("big.bin"),
    size: int = SIZE,
    too_big: int = TOO_BIG,
) -> None:
    sha256 = await asyncio.to_thread(make_file, path, size)
    async with aiohttp.ClientSession(url) as session:
        before = await stored(session)
        status, answer = await send_file(session, "/form", path)
        print(f"POST /form，{size} 字节：{status}，{answer}")

        status, answer = await send_file(session, "/upload", path)
        saved = answer["files"][0]
        same = "一致" if saved["sha256"] == sha256 else "不一致"
        print(
            f"POST /upload，{size} 字节：{status}，{saved['size']} 字节，sha256 {same}"
        )

        # 文件名原样发送（默认会把 / 编码成 %2F），像一个不怀好意的客户端
        status, answer = await send(
            session, "/upload", b"hello\n", "../../etc/passwd", quote_fields=False
        )
        name = answer["files"][0]["name"]
        print(f"POST /upload，文件名 ../../etc/passwd：{status}，记下的名字是 {name}")

        status, answer = await send(session, "/upload", zeros(too_big), "zeros.bin")
        print(f"POST /upload，{too_big} 字节：{status}，{answer}")
        new = sorted((await stored(session)) - before)
    temps = [n for n in new if n.endswith(".part")]
    print(f"uploads/ 里多了 {len(new)} 个文件，其中临时文件 {len(temps)} 个")


if __name__ == "__main__":
    asyncio.run(main())
