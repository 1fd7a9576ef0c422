"""local_address: bind the client's side of the connection to a chosen local IP.

Every connection here goes to 127.0.0.1. The addresses that are not this
machine's fail at bind(), before connect(): no packet is sent anywhere.
"""

import asyncio
import errno
import os
import socket

import aiohttp
import pytest
from aiohttp import web

from local_address import bad_address, client
from local_address.app import create_app

# Documentation ranges (RFC 5737) that no interface of this machine holds.
NOT_LOCAL = ["203.0.113.1", "198.51.100.7"]


@pytest.fixture
async def server(aiohttp_client):
    """The recipe's app on 127.0.0.1, which reports request.remote."""
    return await aiohttp_client(create_app())


@pytest.fixture
def listener():
    """A plain listening socket on 127.0.0.1 that tells whether anyone connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    yield sock
    sock.close()


def accepted_any(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.mark.claim("整个 `127.0.0.0/8` 都配置在回环接口上")
@pytest.mark.claim("服务器看到的来源就是 `127.0.0.2`")
@pytest.mark.parametrize("local_ip", ["127.0.0.2", "127.0.0.3", "127.1.2.3"])
async def test_server_sees_the_bound_address(server, local_ip):
    url = str(server.make_url("/"))
    assert await client.seen_by_server(url, local_ip) == local_ip


async def test_without_binding_the_source_is_127_0_0_1(server):
    url = str(server.make_url("/"))
    assert await client.seen_by_server(url, None) == "127.0.0.1"


async def test_client_script_output(server, capsys):
    await client.main(str(server.make_url("/")), "127.0.0.2")
    out = capsys.readouterr().out
    assert (
        out == "不绑定：服务器看到 127.0.0.1\n绑定 127.0.0.2：服务器看到 127.0.0.2\n"
    ), out


@pytest.mark.claim("它不会替你“伪装”来源地址")
@pytest.mark.claim("先把 socket `bind()` 到这个地址，再 `connect()` 到服务器")
@pytest.mark.claim("失败发生在 `bind()` 这一步")
@pytest.mark.claim("`connect()` 根本没有执行，服务器收不到任何连接")
@pytest.mark.claim("包装成 `ClientConnectorError`，原始异常在 `exc.os_error` 里")
@pytest.mark.parametrize("local_ip", NOT_LOCAL)
async def test_address_not_on_this_machine_fails_at_bind(listener, local_ip, capsys):
    port = listener.getsockname()[1]
    await bad_address.main(f"http://127.0.0.1:{port}/", local_ip)
    out = capsys.readouterr().out
    assert out == (
        f"ClientConnectorError: Cannot connect to host 127.0.0.1:{port} ssl:default "
        f"[error while attempting to bind on address ('{local_ip}', 0): "
        "cannot assign requested address]\n"
        f"errno {errno.EADDRNOTAVAIL}（EADDRNOTAVAIL）\n"
    ), out
    assert not accepted_any(listener), "a connection reached the listener"


@pytest.mark.claim(
    "`EADDRNOTAVAIL`（Linux 上是 99，“Cannot assign requested address”）"
)
def test_the_kernels_words_for_an_address_that_is_not_local():
    assert errno.EADDRNOTAVAIL == 99
    assert os.strerror(errno.EADDRNOTAVAIL) == "Cannot assign requested address"


@pytest.mark.claim("同一个程序就会打印")
async def test_same_script_with_a_local_address_connects(server, capsys):
    await bad_address.main(str(server.make_url("/")), "127.0.0.2")
    out = capsys.readouterr().out
    assert out == "从 127.0.0.2 连接成功：HTTP 200\n", out


async def test_listener_sees_a_connection_that_was_made(listener):
    # The check above can fail: a bound address that works does reach it.
    port = listener.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    await writer.wait_closed()
    assert accepted_any(listener)


@pytest.mark.claim(
    "`local_addr` 却是 IPv6 的 `::1`，aiohttp 就抛出 `ClientConnectorError`"
)
@pytest.mark.claim("它的文字结尾只有一个 `[None]`")
async def test_local_address_of_another_family_is_rejected(server):
    url = str(server.make_url("/"))
    with pytest.raises(aiohttp.ClientConnectorError) as info:
        await client.seen_by_server(url, "::1")
    message = str(info.value.os_error)
    assert message == (
        "no matching local address with family=<AddressFamily.AF_INET: 2> found"
    ), message
    assert str(info.value).endswith(" [None]"), str(info.value)


@pytest.mark.claim("在协程外创建会得到 `RuntimeError: no running event loop`")
def test_connector_needs_a_running_loop():
    with pytest.raises(RuntimeError, match="no running event loop"):
        aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))


@pytest.mark.claim("退出时会连同连接器一起关闭")
async def test_leaving_the_session_closes_the_connector(server):
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(server.make_url("/")) as resp:
            assert await resp.json() == {"remote": "127.0.0.2"}
        assert not connector.closed
    assert connector.closed


async def two_at_once(server, local_addr: tuple[str, int]) -> list:
    """Two requests at the same time: two connections from ``local_addr``."""
    connector = aiohttp.TCPConnector(local_addr=local_addr)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = server.make_url("/")
        results = await asyncio.gather(
            session.get(url), session.get(url), return_exceptions=True
        )
        for result in results:
            if isinstance(result, aiohttp.ClientResponse):
                assert await result.json() == {"remote": local_addr[0]}
                result.release()
    return results


@pytest.mark.claim("让系统为每个连接挑一个空闲端口")
async def test_port_zero_gives_each_connection_a_port_of_its_own(aiohttp_client):
    app, peers = create_app(), []

    async def note_peer(request: web.Request, response: web.StreamResponse) -> None:
        peers.append(request.transport.get_extra_info("peername")[:2])

    app.on_response_prepare.append(note_peer)
    results = await two_at_once(await aiohttp_client(app), ("127.0.0.2", 0))
    assert all(isinstance(r, aiohttp.ClientResponse) for r in results), results
    (host, port), (other_host, other_port) = peers
    assert host == other_host == "127.0.0.2" and port != other_port, peers


@pytest.mark.claim("第二个同时存在的连接会因为")
async def test_a_fixed_local_port_fails_for_a_second_connection(server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    results = await two_at_once(server, ("127.0.0.2", port))
    done = [r for r in results if isinstance(r, aiohttp.ClientResponse)]
    errors = [r for r in results if isinstance(r, aiohttp.ClientConnectorError)]
    assert (len(done), len(errors)) == (1, 1), results
    assert errors[0].os_error.errno == errno.EADDRINUSE, errors
