"""先看状态码，再解析 JSON；每种失败都换成一句说得清的错误。"""

import asyncio
from typing import Any

import aiohttp


class ApiError(Exception):
    """没有拿到可用的 JSON。"""


async def get_json(
    session: aiohttp.ClientSession, path: str, *, trust_body: bool = False
) -> Any:
    """GET path，返回解析好的 JSON。

    trust_body=True：确信响应体是 JSON、只是 Content-Type 写错或没写时才用，
    它让 resp.json() 不再检查 Content-Type。
    """
    async with session.get(path) as resp:
        if resp.status >= 400:
            # 先看状态码：出错时的响应体常常是代理的 HTML 错误页，不必拿去解析
            text = await resp.text(errors="replace")
            head = " ".join(text.split())[:60]
            raise ApiError(f"HTTP {resp.status}，响应体开头：{head}")
        try:
            if trust_body:
                return await resp.json(content_type=None)
            return await resp.json()
        except aiohttp.ContentTypeError as exc:
            content_type = resp.headers.get("Content-Type")
            raise ApiError(f"Content-Type 是 {content_type!r}，不是 JSON") from exc
        except ValueError as exc:  # json.JSONDecodeError，或响应体不是 UTF-8
            raise ApiError(f"响应体不是合法的 JSON：{exc}") from exc


async def main(base_url: str) -> None:
    async with aiohttp.ClientSession(base_url) as session:
        for path, trust_body in [
            ("/ok", False),
            ("/html-json", False),
            ("/html-json", True),
            ("/no-type", True),
            ("/broken", False),
            ("/bad-gateway", False),
            ("/bad-gateway", True),
        ]:
            try:
                data = await get_json(session, path, trust_body=trust_body)
            except ApiError as exc:
                data = f"ApiError：{exc}"
            print(f"GET {path}（trust_body={trust_body}）-> {data}")


if __name__ == "__main__":
    asyncio.run(main("http://127.0.0.1:8080"))
