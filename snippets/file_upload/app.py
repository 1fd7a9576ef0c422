"""接收上传的文件：/upload 用 request.multipart() 边收边写，/form 用 request.post()。"""

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from functools import partial
from pathlib import Path

from aiohttp import BodyPartReader, web

UPLOAD_DIR = web.AppKey("upload_dir", Path)
MAX_FILE_SIZE = web.AppKey("max_file_size", int)

DEFAULT_UPLOAD_DIR = Path(__file__).with_name("uploads")  # 与 app.py 放在一起
DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024  # 每个文件最多 64 MiB
MAX_FILES = 10  # 一个请求最多带几个文件
CHUNK_SIZE = 64 * 1024
dumps = partial(json.dumps, ensure_ascii=False)  # 中文原样输出，不转成 \uXXXX


def display_name(filename: str | None) -> str:
    """客户端给的文件名只用来显示：去掉目录部分和不可打印的字符，最多留 100 个字符。"""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()[:100]
    return name if name not in {"", ".", ".."} else "upload"


async def save_part(part: BodyPartReader, fd: int, limit: int) -> dict:
    """把一个文件部分写进已经打开的临时文件 fd；超过 limit 字节就回 413。"""
    size, digest = 0, hashlib.sha256()
    with os.fdopen(fd, "wb") as f:
        while chunk := await part.read_chunk(CHUNK_SIZE):
            size += len(chunk)
            if size > limit:
                raise web.HTTPRequestEntityTooLarge(
                    limit, size, text=f"每个文件最多 {limit} 字节\n"
                )
            f.write(chunk)
            digest.update(chunk)
    name = display_name(part.filename)
    return {"name": name, "size": size, "sha256": digest.hexdigest()}


async def upload(request: web.Request) -> web.Response:
    if request.content_type != "multipart/form-data":
        raise web.HTTPUnsupportedMediaType(text="请用 multipart/form-data 上传\n")
    folder, limit = request.app[UPLOAD_DIR], request.app[MAX_FILE_SIZE]
    temps: list[str] = []  # 这个请求写下的临时文件
    files: list[dict] = []
    fields: dict[str, str] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise web.HTTPBadRequest(text="不接受嵌套的 multipart\n")
            if part.filename is None:  # 普通字段：读进内存，超过 client_max_size 回 413
                fields[part.name or ""] = await part.text()
                continue
            if len(files) == MAX_FILES:
                raise web.HTTPRequestEntityTooLarge(
                    MAX_FILES, text=f"一个请求最多 {MAX_FILES} 个文件\n"
                )
            # 临时文件以 . 开头、在同一个目录里：写完后改名不用跨文件系统复制
            fd, temp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".part")
            temps.append(temp)
            files.append(await save_part(part, fd, limit))
        # 整个请求都收完，才把文件改成正式的名字：名字由服务器生成，和客户端无关
        for temp, info in zip(temps, files, strict=True):
            info["id"] = secrets.token_hex(16)
            os.replace(temp, folder / info["id"])
    except (ValueError, LookupError) as exc:  # multipart 格式不对、字段不是合法的文本
        raise web.HTTPBadRequest(text=f"请求体格式不对：{exc}\n") from None
    except ConnectionResetError:  # 客户端传到一半断开：回答没人收，不必当成服务器的错误
        raise web.HTTPBadRequest(text="上传没有完成\n") from None
    finally:
        for temp in temps:  # 出错、超限、客户端断开：删掉没改名的临时文件
            with contextlib.suppress(FileNotFoundError):
                os.remove(temp)
    body = {"files": files, "fields": fields}
    return web.json_response(body, status=201, dumps=dumps)


async def form(request: web.Request) -> web.Response:
    """小表单：request.post() 收完整个请求体才返回，超过 client_max_size 回 413。"""
    try:
        data = await request.post()
    except (ValueError, LookupError) as exc:
        raise web.HTTPBadRequest(text=f"请求体格式不对：{exc}\n") from None
    sizes = {}
    for name, value in data.items():
        if isinstance(value, web.FileField):
            sizes[name] = value.file.seek(0, os.SEEK_END)  # 文件的字节数
        else:
            sizes[name] = len(value)
    return web.json_response(sizes)


async def list_uploads(request: web.Request) -> web.Response:
    names = await asyncio.to_thread(os.listdir, request.app[UPLOAD_DIR])
    return web.json_response(sorted(names))


def create_app(
    upload_dir: str | Path = DEFAULT_UPLOAD_DIR,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    client_max_size: int = 1024**2,  # aiohttp 的默认值：1 MiB
) -> web.Application:
    app = web.Application(client_max_size=client_max_size)
    app[UPLOAD_DIR] = Path(upload_dir)
    app[UPLOAD_DIR].mkdir(exist_ok=True)
    app[MAX_FILE_SIZE] = max_file_size
    app.router.add_post("/upload", upload)
    app.router.add_post("/form", form)
    app.router.add_get("/uploads", list_uploads)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
