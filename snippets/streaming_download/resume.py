"""下载到一半连接断了：aiohttp 抛出什么，留在磁盘上的部分怎样用 Range 接着下载。"""

import asyncio
import traceback
from pathlib import Path

import aiohttp
from download import TIMEOUT, check_sha256, fetch

URL = "http://127.0.0.1:8080/big.bin"
DROP_AFTER = 12 * 1024 * 1024  # 让服务器发出 12 MiB 就断开


async def main(
    url: str = URL, path: Path = Path("big.bin"), drop_after: int = DROP_AFTER
) -> None:
    await asyncio.to_thread(path.unlink, missing_ok=True)  # 从空文件开始
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        try:
            await fetch(session, f"{url}?drop_after={drop_after}", path)
        except aiohttp.ClientPayloadError as exc:
            print("".join(traceback.format_exception_only(exc)), end="")
        kept = (await asyncio.to_thread(path.stat)).st_size
        print(f"{path} 里留下了 {kept} 字节")
        await fetch(session, url, path)  # 同一个文件，请求缺的部分
        digest = await check_sha256(session, url, path)
    print(f"sha256 与服务器给出的一致：{digest}")


if __name__ == "__main__":
    asyncio.run(main())
