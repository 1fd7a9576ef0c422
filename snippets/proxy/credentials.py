"""同一个要求认证的代理，几种带凭据的写法，分别请求 http:// 和 https:// 目标。

PROXY_URL 是不带凭据的代理地址，例如 http://127.0.0.1:8888；
USER、PASSWORD 和 tinyproxy.conf 里 BasicAuth 那一行一致。
"""

import asyncio
import os
import warnings
from typing import Any

import aiohttp
import targets
from yarl import URL

USER, PASSWORD = "user", "secret"


def ways(proxy: str) -> dict[str, dict[str, Any]]:
    """每种写法传给 session.get() 的参数。"""
    return {
        "不带凭据": {"proxy": proxy},
        "凭据写在代理 URL 里": {
            "proxy": URL(proxy).with_user(USER).with_password(PASSWORD)
        },
        "proxy_headers": {
            "proxy": proxy,
            "proxy_headers": {
                "Proxy-Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)
            },
        },
        "proxy_auth=BasicAuth(...)": {
            "proxy": proxy,
            "proxy_auth": aiohttp.BasicAuth(USER, PASSWORD),  # aiohttp 3.14 起弃用
        },
        "代理 URL 里的密码错了": {
            "proxy": URL(proxy).with_user(USER).with_password("wrong")
        },
    }


async def main() -> None:
    proxy = os.environ.get("PROXY_URL")
    if not proxy:
        print("没有设置 PROXY_URL：先起一个要求认证的代理，再把它的地址放进 PROXY_URL")
        return
    async with targets.serve() as site, aiohttp.ClientSession() as session:
        for url in (site.http_url, site.https_url):
            scheme = URL(url).scheme
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for name, kwargs in ways(proxy).items():
                    try:
                        async with session.get(
                            url, ssl=site.ssl_context, **kwargs
                        ) as resp:
                            outcome = f"{resp.status} {resp.reason}"
                    except aiohttp.ClientError as exc:
                        outcome = f"{type(exc).__name__}: {exc}"
                    print(f"{scheme} {name}：{outcome}")
            for warning in caught:
                print(f"{scheme} {warning.category.__name__}: {warning.message}")


if __name__ == "__main__":
    asyncio.run(main())
