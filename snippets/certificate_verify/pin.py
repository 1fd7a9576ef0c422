"""固定证书：只接受 SHA-256 指纹和 server.crt 相同的证书。"""

import asyncio
import hashlib
import ssl
from pathlib import Path

import aiohttp
from https_app import serve
from ssl_false import impostor_context


def fingerprint(certfile: str = "server.crt") -> bytes:
    """证书（DER 格式）的 SHA-256 摘要，32 字节。"""
    der = ssl.PEM_cert_to_DER_cert(Path(certfile).read_text())
    return hashlib.sha256(der).digest()


async def main() -> None:
    async with (
        serve() as real,
        serve(impostor_context()) as impostor,
        aiohttp.ClientSession() as session,
    ):
        pinned = aiohttp.Fingerprint(fingerprint("server.crt"))
        for name, url in [("真的服务器", real), ("冒充者", impostor)]:
            print(f"—— {name}，ssl=aiohttp.Fingerprint(...)")
            try:
                async with session.get(url, ssl=pinned) as resp:
                    print(f"  {resp.status} {await resp.text()}")
            except aiohttp.ServerFingerprintMismatch as exc:
                where = f"{exc.host}:{exc.port}"
                print(f"  ServerFingerprintMismatch：{where} 出示的不是那张证书")


if __name__ == "__main__":
    asyncio.run(main())
