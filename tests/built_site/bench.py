"""Measure the built site as a reader gets it: bytes per page and load time.

Run by `nox -s bench` (``--site`` is the site the `docs` session built); prints
one line per page. Not a test: nothing here passes or fails on timing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from playwright.sync_api import sync_playwright  # noqa: E402
from test_browser import CHROMIUM_ARGS, url_path  # noqa: E402

import pages  # noqa: E402
from servers import free_port, nginx, require_program  # noqa: E402

BUDGET_PAGE_BYTES = 300_000


# How a static host serves the site: nginx with gzip for text assets.
STATIC_HOST = """
server {
    listen 127.0.0.1:%(port)d;
    root %(site)s;
    gzip on;
    gzip_types text/css application/javascript application/json image/svg+xml;
}
"""


def page_numbers(site: Path) -> dict[str, tuple[int, float]]:
    """Bytes transferred and time to DOMContentLoaded (ms) for every page."""
    port = free_port()
    results = {}
    with (
        tempfile.TemporaryDirectory() as workdir,
        nginx(
            STATIC_HOST % {"port": port, "site": site}, port=port, workdir=Path(workdir)
        ) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=require_program("chromium"), args=CHROMIUM_ARGS
        )
        for page in pages.pages():
            context = browser.new_context(base_url=server.url)  # a cold cache
            tab = context.new_page()
            cdp = context.new_cdp_session(tab)
            cdp.send("Network.enable")
            sizes: list[int] = []
            cdp.on(
                "Network.loadingFinished",
                lambda event, sizes=sizes: sizes.append(event["encodedDataLength"]),
            )
            tab.goto(url_path(page), wait_until="networkidle")
            dcl = tab.evaluate(
                "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
            )
            results[page.name] = (sum(sizes), dcl)
            context.close()
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, required=True, help="a built site")
    numbers = page_numbers(parser.parse_args().site.resolve())
    heaviest = max(numbers, key=lambda name: numbers[name][0])
    print("每页传输字节数（nginx + gzip，冷缓存）与 DOMContentLoaded：")
    for name, (size, dcl) in numbers.items():
        flag = "" if size < BUDGET_PAGE_BYTES else "  超出预算"
        print(f"  {name:28} {size / 1000:7.1f} kB  {dcl:6.0f} ms{flag}")
    print(f"最重的页面：{heaviest}；预算 {BUDGET_PAGE_BYTES / 1000:.0f} kB")


if __name__ == "__main__":
    main()
