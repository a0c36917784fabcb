"""The README's screenshots of `cnnlab explore`, one per view, taken in a real browser.

Starts ``cnnlab explore RUNS_DIR`` on a free port, drives Debian's chromium (headless,
through Playwright with the system browser) the way a person would, and writes
docs/images/explore-conv.png, explore-model.png and explore-runs.png.

    python scripts/make_explore_screenshots.py runs/        # runs made by `make demo`
    python scripts/make_explore_screenshots.py runs/ --out /tmp/shots
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("cnnlab explore stopped before it served the page")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def shoot(url: str, out: Path, browser_path: str, checkpoint: str | None) -> list[str]:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=FLAGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
        pg.set_default_timeout(60_000)
        pg.on("request", lambda r: requests.append(r.url))
        pg.goto(url)
        pg.wait_for_selector("#conv-formula :text('output')")
        # Convolution: a Sobel kernel with padding 1 on a test image, the window mid-way
        pg.locator("#conv-preset input").fill("Sobel x")
        pg.keyboard.press("Enter")
        for key, value in (("conv-padding-h", 1), ("conv-padding-w", 1), ("conv-step", 468)):
            box = pg.locator(f"#{key} input[type=number]")
            box.fill(str(value))
            box.press("Enter")
        pg.locator("#conv-pool").get_by_label("max").check()
        pg.wait_for_selector("#conv-sum :text('Y[16, 20]')")
        pg.wait_for_timeout(1500)
        pg.screenshot(path=str(out / "explore-conv.png"), full_page=True)
        # Model: a test image's prediction, then a click on a unit of the second stage
        pg.get_by_role("tab", name="Model").click()
        pg.wait_for_selector("#model-info :text('test image')")
        if checkpoint:
            pg.locator("#model-ckpt input").fill(checkpoint)
            pg.keyboard.press("Enter")
            pg.wait_for_selector(f"#model-info :text('{checkpoint}')")
        maps = pg.locator("#model-maps img")
        maps.scroll_into_view_if_needed()
        box = maps.bounding_box()
        maps.click(position={"x": box["width"] * 0.12, "y": box["height"] * 0.62})
        pg.wait_for_selector("#model-field :text('receptive field')")
        pg.wait_for_timeout(1500)
        pg.evaluate("window.scrollTo(0, 0)")
        pg.screenshot(path=str(out / "explore-model.png"), full_page=True)
        # Runs: the curves of two runs overlaid and the table
        pg.get_by_role("tab", name="Runs").click()
        pg.wait_for_function("() => document.querySelector('#runs-table').innerText"
                             ".includes('val_acc')")
        pg.wait_for_timeout(4000)
        pg.screenshot(path=str(out / "explore-runs.png"), full_page=True)
        browser.close()
    return requests


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", help="a folder of runs (e.g. runs/ after make demo)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "images"))
    ap.add_argument("--checkpoint", help="the Model view's checkpoint, as the list names it "
                    "(default: the first)")
    args = ap.parse_args()
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise SystemExit("no chromium: apt-get install chromium")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "explore", args.runs, "--port",
                             str(port), "--no-browser"])
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait(url, proc)
        requests = shoot(url, out, browser_path, args.checkpoint)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    outside = [u for u in requests if u.split("/")[2].split(":")[0] not in ("127.0.0.1",
                                                                            "localhost")]
    print(f"wrote {', '.join(f'explore-{v}.png' for v in ('conv', 'model', 'runs'))} in {out}; "
          f"{len(requests)} requests, {len(outside)} outside this machine")
    return 0 if not outside else 1


if __name__ == "__main__":
    sys.exit(main())
