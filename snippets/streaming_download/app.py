"""发大文件的服务器：/big.bin 由 web.FileResponse 发送，支持 Range 续传。"""

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

SIZE = 32 * 1024 * 1024  # 32 MiB
BLOCK = 1024 * 1024
BIG_FILE_SIZE = web.AppKey("big_file_size", int)
BIG_FILE = web.AppKey("big_file", Path)
BIG_FILE_SHA256 = web.AppKey("big_file_sha256", str)


def write_big_file(path: Path, size: int) -> str:
    """写一个 size 字节的文件，返回它的 sha256。

    第 i 个 1 MiB 块是 SHAKE-128(i) 的输出：内容看起来是随机的，但每次生成的都一样。
    """
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for number, start in enumerate(range(0, size, BLOCK)):
            seed = number.to_bytes(8, "big")
            block = hashlib.shake_128(seed).digest(min(BLOCK, size - start))
            f.write(block)
            digest.update(block)
    return digest.hexdigest()


async def big_file(app: web.Application) -> AsyncIterator[None]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.bin"
        size = app[BIG_FILE_SIZE]
        app[BIG_FILE_SHA256] = await asyncio.to_thread(write_big_file, path, size)
        app[BIG_FILE] = path
        yield  # 服务器退出时删除整个临时目录


async def send_big_file(request: web.Request) -> web.StreamResponse:
    drop_after = request.query.get("drop_after")
    if drop_after is None:
        return web.FileResponse(request.app[BIG_FILE])  # 自己处理 Range
    if not (drop_after.isascii() and drop_after.isdigit()):
        raise web.HTTPBadRequest(text="drop_after 要写成字节数\n")
    app = request.app
    return await send_then_drop(
        request, app[BIG_FILE], app[BIG_FILE_SIZE], int(drop_after)
    )


async def send_then_drop(
    request: web.Request, path: Path, size: int, limit: int
) -> web.StreamResponse:
    """模拟传到一半出故障：Content-Length 是整个文件的长度，只发出 limit 字节就断开。"""
    resp = web.StreamResponse()
    resp.content_type = "application/octet-stream"
    resp.content_length = size
    await resp.prepare(request)
    sent = 0
    with path.open("rb") as f:
        while sent < min(limit, size):
            block = await asyncio.to_thread(f.read, min(BLOCK, limit - sent))
            await resp.write(block)
            sent += len(block)
    if request.transport is not None:
        request.transport.close()  # 不等响应体发完就关闭连接
    return resp


async def send_sha256(request: web.Request) -> web.Response:
    # 和 sha256sum 的输出格式一样：摘要、两个空格、文件名
    return web.Response(text=f"{request.app[BIG_FILE_SHA256]}  big.bin\n")


def create_app(file_size: int = SIZE) -> web.Application:
    app = web.Application()
    app[BIG_FILE_SIZE] = file_size
    app.cleanup_ctx.append(big_file)
    app.router.add_get("/big.bin", send_big_file)
    app.router.add_get("/big.bin.sha256", send_sha256)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
