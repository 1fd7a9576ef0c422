"""同一个应用交给 web.run_app()：事件循环、Ctrl+C 和停机都归它管；多个地址照样监听。"""

from __future__ import annotations

import os
import socket

from aiohttp import web
from app import create_app


def listening_sockets(ports: list[int]) -> list[socket.socket]:
    """run_app() 的 port= 只收一个端口；多个端口先各建一个监听 socket，交给 sock=。"""
    return [socket.create_server(("127.0.0.1", port)) for port in ports]


if __name__ == "__main__":
    ports = [int(port) for port in os.environ.get("PORT", "8080,8081").split(",")]
    web.run_app(create_app(), sock=listening_sockets(ports), path="app.sock")
