"""Measure this machine: test-suite wall time, site build time, page weight and load.

Run by `nox -s bench`; prints one table. Not a test: nothing here passes or
fails on timing. The budgets it reports against are the project's own.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from playwright.sync_api import sync_playwright  # noqa: E402
from test_browser import CHROMIUM_ARGS, url_path  # noqa: E402

import pages  # noqa: E402
from servers import free_port, nginx, require_program  # noqa: E402

BUDGET_PAGE_BYTES = 300_000
BUDGET_BUILD_S = 3.0
BUDGET_SUITE_S = 15.0


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=pages.ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


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
    # The suite as `nox -s tests` runs it, without the coverage bookkeeping.
    suite = timed([sys.executable, "-m", "pytest", "-q", "-n", "2"])
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build = timed(["mkdocs", "build", "--quiet", "--site-dir", str(site)])
        numbers = page_numbers(site)
    heaviest = max(numbers, key=lambda name: numbers[name][0])

    def verdict(ok: bool) -> str:
        return "within budget" if ok else "OVER BUDGET"

    print(f"test suite wall time: {suite:.1f} s ({verdict(suite < BUDGET_SUITE_S)})")
    print(f"mkdocs build time:    {build:.1f} s ({verdict(build < BUDGET_BUILD_S)})")
    print("bytes per page from nginx with gzip (cold cache), DOMContentLoaded:")
    for name, (size, dcl) in numbers.items():
        flag = "" if size < BUDGET_PAGE_BYTES else "  OVER BUDGET"
        print(f"  {name:28} {size / 1000:7.1f} kB  {dcl:6.0f} ms{flag}")
    print(f"DOMContentLoaded: home {numbers['index.md'][1]:.0f} ms, ", end="")
    print(f"heaviest page ({heaviest}) {numbers[heaviest][1]:.0f} ms")


if __name__ == "__main__":
    main()
