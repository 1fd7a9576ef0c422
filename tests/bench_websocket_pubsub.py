"""Load for the websocket_pubsub recipe: does every message reach every socket?

A plain script, not a test (pytest does not collect it):

    python tests/bench_websocket_pubsub.py [--sockets 1000] [--messages 20]

It starts a real redis-server and the recipe's snippets/websocket_pubsub/app.py
as real processes on 127.0.0.1, holds ``--sockets`` websockets open to one
server process, publishes ``--messages`` messages one at a time and checks that
each one reaches every socket exactly once; then the same with two server
processes sharing one Redis, ``--sockets`` websockets to each. It prints what it
measured and exits 1 if any message was lost or any socket failed to connect.
Every wait is bounded, so it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis.asyncio as redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from servers import free_port, require_program, running  # noqa: E402

APP = HERE.parent / "snippets" / "websocket_pubsub" / "app.py"
CHANNEL = "channel:1"  # the recipe's channel
GREETING = f"已订阅 {CHANNEL}"
CONNECT_TIMEOUT = 120.0  # opening every socket of a phase
FANOUT_TIMEOUT = 30.0  # one message reaching every socket
CLOSE_TIMEOUT = 60.0
HANDSHAKES_AT_ONCE = 100  # the server's listen backlog is 128


def raise_open_files_limit(needed: int) -> int:
    """Raise RLIMIT_NOFILE for this process; child processes inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"need {needed} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    sockets: int
    failed: int = 0
    subscribers: int = 0
    open_s: float = 0.0
    sent: int = 0
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    fanouts_ms: list[float] = field(default_factory=list)


class Inbox:
    """Arrivals of the numbered messages on every socket."""

    def __init__(self, sockets: int, messages: int) -> None:
        self.sockets = sockets
        self.seen: list[set[int]] = [set() for _ in range(sockets)]
        self.counts = [0] * messages
        self.last = [0.0] * messages
        self.duplicates = 0
        self.complete = [asyncio.Event() for _ in range(messages)]

    async def read(self, index: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:  # ends when the socket closes
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            number = int(msg.data.removeprefix("bench "))
            if number in self.seen[index]:
                self.duplicates += 1
                continue
            self.seen[index].add(number)
            self.counts[number] += 1
            self.last[number] = time.perf_counter()
            if self.counts[number] == self.sockets:
                self.complete[number].set()


async def open_socket(
    session: aiohttp.ClientSession, url: str, gate: asyncio.Semaphore
) -> aiohttp.ClientWebSocketResponse | None:
    """A websocket whose server has subscribed (it said so), or None."""
    async with gate:
        try:
            ws = await session.ws_connect(url)
            if await ws.receive_str(timeout=FANOUT_TIMEOUT) == GREETING:
                return ws
            await ws.close()
        except (aiohttp.ClientError, OSError, TimeoutError, TypeError):
            pass  # TypeError: the server closed it (1013) instead of greeting
    return None


async def run_phase(
    name: str, urls: list[str], per_server: int, messages: int, redis_url: str
) -> Phase:
    phase = Phase(name, sockets=per_server * len(urls))
    connector = aiohttp.TCPConnector(limit=0)
    publisher = redis.from_url(redis_url, decode_responses=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
        start = time.perf_counter()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            opened = await asyncio.gather(
                *(
                    open_socket(session, url, gate)
                    for url in urls
                    for _ in range(per_server)
                )
            )
        phase.open_s = time.perf_counter() - start
        sockets = [ws for ws in opened if ws is not None]
        phase.failed = phase.sockets - len(sockets)
        [(_, phase.subscribers)] = await publisher.pubsub_numsub(CHANNEL)
        inbox = Inbox(len(sockets), messages)
        readers = [
            asyncio.create_task(inbox.read(i, ws)) for i, ws in enumerate(sockets)
        ]
        for number in range(messages):
            sent_at = time.perf_counter()
            await publisher.publish(CHANNEL, f"bench {number}")
            phase.sent += 1
            try:
                async with asyncio.timeout(FANOUT_TIMEOUT):
                    await inbox.complete[number].wait()
                phase.fanouts_ms.append((inbox.last[number] - sent_at) * 1000)
            except TimeoutError:
                break  # counted as lost below; no point publishing more
        phase.received = sum(inbox.counts)
        phase.lost = phase.sent * len(sockets) - phase.received
        phase.duplicates = inbox.duplicates
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await asyncio.gather(*(ws.close() for ws in sockets))
            await asyncio.gather(*readers)
    await publisher.aclose()
    return phase


def report(phase: Phase) -> None:
    held = phase.sockets - phase.failed
    rows = [
        (
            "connections held",
            f"{held} of {phase.sockets}, opened in {phase.open_s:.1f} s",
        ),
        ("Redis subscribers", f"{phase.subscribers} on {CHANNEL}"),
        ("messages sent", f"{phase.sent}"),
        ("messages received", f"{phase.received} (expected {phase.sent * held})"),
        ("lost", f"{phase.lost}"),
        ("duplicates", f"{phase.duplicates}"),
    ]
    if phase.fanouts_ms:
        ms = sorted(phase.fanouts_ms)
        rows.append(
            (
                "fan-out time",
                f"median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, "
                f"min {ms[0]:.0f} ms (publish → the last socket has it)",
            )
        )
    print(phase.name)
    for label, value in rows:
        print(f"  {label + ':':<19} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000, help="per server process")
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    # Two servers with --sockets each; every socket costs a descriptor in this
    # process and in its server, plus a Redis connection if the app opens one.
    limit = raise_open_files_limit(4 * args.sockets + 1024)
    print(f"open files limit (inherited by the servers): {limit}")

    phases = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        redis_port = free_port()
        argv = [require_program("redis-server"), "--port", str(redis_port)]
        argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", tmp, "--maxclients", str(4 * args.sockets)]
        stack.enter_context(
            running(argv, port=redis_port, cwd=folder, stop_signal=signal.SIGTERM)
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"

        urls = []
        for _ in range(2):
            port = free_port()
            env = {"PORT": str(port), "REDIS_URL": redis_url}
            argv = [sys.executable, str(APP)]
            server = stack.enter_context(running(argv, port=port, cwd=folder, env=env))
            urls.append(f"{server.url}/ws")
            soft, _ = resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE)
            print(f"server process {server.proc.pid}: open files limit {soft}")

        for name, targets in [
            (f"one server process, {args.sockets} websockets", urls[:1]),
            (f"two server processes, {args.sockets} websockets each", urls),
        ]:
            phase = asyncio.run(
                run_phase(name, targets, args.sockets, args.messages, redis_url)
            )
            report(phase)
            phases.append(phase)

    bad = [p for p in phases if p.lost or p.failed or p.duplicates]
    print("FAILED: " + "; ".join(p.name for p in bad) if bad else "OK: nothing lost")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
