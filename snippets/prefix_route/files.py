"""从一个目录发文件的两种写法：add_static()，或者先检查 tail 再交给 FileResponse。"""

import os
import sys
from pathlib import Path

from aiohttp import web

FOLDER = web.AppKey("folder", Path)


async def send_file(request: web.Request) -> web.FileResponse:
    folder = request.app[FOLDER]
    tail = request.match_info["tail"]
    if "\x00" in tail:  # resolve() 遇到它会抛 ValueError
        raise web.HTTPNotFound()
    # resolve() 折叠 ..、解析符号链接；以 / 开头的 tail 会让 folder 被丢掉
    path = (folder / tail).resolve()
    if not path.is_relative_to(folder):  # 跑到目录外面了
        raise web.HTTPNotFound()
    return web.FileResponse(path)


def create_app(folder: str | Path = ".") -> web.Application:
    app = web.Application()
    app[FOLDER] = Path(folder).resolve()
    # 推荐：aiohttp 自己检查路径
    app.router.add_static("/static", app[FOLDER])
    # 自己拼路径时，检查一项都不能少
    app.router.add_get("/files/{tail:.+}", send_file)
    return app


if __name__ == "__main__":
    folder = sys.argv[1] if len(sys.argv) > 1 else "."
    port = int(os.environ.get("PORT", "8080"))
    web.run_app(create_app(folder), host="127.0.0.1", port=port)
