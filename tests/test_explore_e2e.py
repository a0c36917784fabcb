"""`cnnlab explore` in a real headless browser (Debian's chromium, driven by Playwright).

Starts the command on a free port with a small run directory, opens each view as a
person would, and records every request the browser makes: all of them must go to
this machine. Skips with a reason where Gradio, Playwright or chromium are missing
(`make test` installs chromium where apt and root are there).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("gradio", reason="the explore extra is not installed: pip install "
                    "'cnnlab[explore]'")
pytest.importorskip("playwright.sync_api", reason="playwright (pip) drives the browser")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium browser (apt-get install chromium; make test does it as root)",
                allow_module_level=True)

pytestmark = pytest.mark.slow
CNNLAB = [sys.executable, "-m", "cnnlab"]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]
LOCAL = ("127.0.0.1", "localhost")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A tiny LeNet run (a few real batches) and `cnnlab explore` serving it."""
    root = tmp_path_factory.mktemp("explore")
    runs = root / "runs"
    env = {**os.environ, "CNNLAB_NATIVE": "0"}  # the C kernels are not what is tested here
    dataset = "fashion-mnist" if _has_fashion_mnist() else "synthetic"
    subprocess.run([*CNNLAB, "train", "lenet", "--dataset", dataset, "--epochs", "1",
                    "--limit-train-batches", "3", "--limit-val-batches", "1",
                    "--out", str(runs / "lenet")], check=True, env=env, cwd=root,
                   capture_output=True, timeout=300)
    port = _free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([*CNNLAB, "explore", str(runs), "--port", str(port),
                             "--no-browser"], stdout=log, stderr=subprocess.STDOUT, cwd=root,
                            env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    else:
        proc.kill()
    if proc.poll() is not None:
        pytest.fail(f"cnnlab explore did not start: {(root / 'server.log').read_text()[-2000:]}")
    yield url, runs, root
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _has_fashion_mnist() -> bool:
    from cnnlab.data import is_available

    return is_available("fashion-mnist")


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    url = server[0]
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1100})
        pg.set_default_timeout(30_000)
        pg.on("request", lambda r: requests.append(r.url))
        pg.goto(url)
        pg.wait_for_selector("#conv-formula :text('output')")
        yield pg, requests
        browser.close()


def _set_slider(pg, elem_id: str, value: int) -> None:
    box = pg.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_convolution_view_shows_the_7_3_example(page):
    pg, _ = page
    pg.get_by_role("button", name="the 7.3 example").click()
    pg.wait_for_selector("#conv-formula :text('2 × 2')")
    text = pg.inner_text("#conv-formula")
    assert "floor((8 + 2*0 - 1*(3-1) - 1)/3) + 1 = floor(5/3) + 1 = 2" in text
    assert "floor((8 + 2*1 - 1*(5-1) - 1)/4) + 1 = floor(5/4) + 1 = 2" in text
    # a slider moved by hand: stride w 4 -> 2 makes the width floor(5/2) + 1 = 3
    _set_slider(pg, "conv-stride-w", 2)
    pg.wait_for_selector("#conv-formula :text('2 × 3')")
    _set_slider(pg, "conv-step", 4)  # the fifth window: row 1, column 1 of 2x3
    pg.wait_for_selector("#conv-sum :text('Y[1, 1]')")
    assert pg.inner_text("#conv-msg").strip() == ""


def test_one_by_one_convolution_is_shown_as_a_matrix_product(page):
    pg, _ = page
    pg.get_by_text("1x1 convolution is a matrix product (7.4)").click()
    pg.get_by_role("button", name="compute", exact=True).click()
    pg.wait_for_selector(":text('differ by at most')")
    assert "K (3x3) @ X (3x256)" in pg.inner_text("body")


def test_model_view_predicts_and_draws_a_receptive_field(page):
    pg, _ = page
    pg.get_by_role("tab", name="Model").click()
    pg.wait_for_selector("#model-info :text('test image 0')")
    pred = pg.inner_text("#model-pred")
    from cnnlab.data import load_dataset

    classes = load_dataset("fashion-mnist" if _has_fashion_mnist() else "synthetic",
                           download=False).classes
    assert any(c in pred for c in classes), pred
    before = pg.locator("#model-input img").get_attribute("src")
    img = pg.locator("#model-maps img")
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    # the first stage's first map sits at the top left, under its caption
    img.click(position={"x": box["width"] * 0.08, "y": box["height"] * 0.08})
    pg.wait_for_selector("#model-field :text('receptive field')")
    field = pg.inner_text("#model-field")
    assert "sees input rows" in field
    pg.wait_for_function(
        "src => document.querySelector('#model-input img').getAttribute('src') !== src", arg=before)


def test_uploads_a_bad_one_is_a_message_a_good_one_a_prediction(page, tmp_path):
    from PIL import Image, ImageDraw

    pg, _ = page
    big, good = tmp_path / "big.png", tmp_path / "shirt.png"
    Image.new("L", (5000, 4000), 255).save(big)  # 20 megapixels: over the cap, a small file
    im = Image.new("RGB", (120, 90), "white")  # a dark shape on white paper, like a photo
    ImageDraw.Draw(im).rectangle((35, 15, 85, 80), fill="black")
    im.save(good)
    pg.get_by_role("tab", name="Convolution").click()  # a bad upload: a message, no crash
    pg.get_by_text("draw or upload").locator("visible=true").click()
    pg.locator("#conv-source").get_by_label("upload").check()
    pg.locator("#conv-upload input[type=file]").set_input_files(str(big))
    pg.wait_for_selector("#conv-msg :text('megapixels')")
    pg.locator("#conv-source").get_by_label("test image").check()
    pg.wait_for_function("() => document.querySelector('#conv-msg').innerText.trim() === ''")
    pg.get_by_role("tab", name="Model").click()  # a good one: its prediction
    pg.get_by_text("draw or upload").locator("visible=true").click()
    pg.locator("#model-source").get_by_label("upload").check()
    pg.locator("#model-upload input[type=file]").set_input_files(str(good))
    pg.wait_for_selector("#model-info :text('upload shirt.png')")
    assert pg.inner_text("#model-msg").strip() == ""
    pg.locator("#model-source").get_by_label("test image").check()
    pg.wait_for_selector("#model-info :text('test image 0')")


def test_model_view_activation_statistics(page):
    pg, _ = page
    pg.get_by_text("activation statistics: test images vs noise").click()
    pg.get_by_role("button", name="compute (256 images of each)").click()
    pg.wait_for_selector("#model-stats textarea", state="attached")
    pg.wait_for_function("() => document.querySelector('#model-stats textarea').value"
                         ".includes('prediction entropy')", timeout=60_000)
    assert pg.inner_text("#model-msg").strip() == ""


def test_runs_view_lists_the_run(page):
    pg, _ = page
    pg.get_by_role("tab", name="Runs").click()
    pg.wait_for_function("() => document.querySelector('#runs-table').innerText"
                         ".includes('lenet')")
    table = pg.inner_text("#runs-table")
    assert "val_acc" in table and ("fashion-mnist" in table or "synthetic" in table)


def test_the_browser_fetched_nothing_from_elsewhere(page):
    pg, requests = page
    assert requests
    outside = [u for u in requests if u.split("/")[2].split(":")[0] not in LOCAL
               and not u.startswith(("data:", "blob:"))]
    assert outside == []


def test_files_outside_are_not_served(server):
    url, runs, _ = server
    for target in ("/etc/passwd", str(runs / "lenet" / "best.pt"), "../../etc/passwd"):
        try:
            with urllib.request.urlopen(f"{url}gradio_api/file={target}", timeout=10) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status in (400, 403, 404), (target, status)


def test_cli_refuses_a_missing_folder_in_one_line(tmp_path, capsys):
    from cnnlab.cli import main

    assert main(["explore", str(tmp_path / "missing"), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error:") and len(err.strip().splitlines()) == 1
    assert "does not exist" in err


def _open_drawing(pg, prefix: str):
    """The view's sketchpad, opened, with "drawing" as the input; its canvas."""
    pad = pg.locator(f"#{prefix}-draw")
    if not pad.is_visible():
        pg.get_by_text("draw or upload").locator("visible=true").click()
    pg.locator(f"#{prefix}-source").get_by_label("drawing").check()
    pad.get_by_role("button", name="Brush").first.click()  # the pad starts with no tool
    canvas = pad.locator("canvas").locator("visible=true").first
    canvas.scroll_into_view_if_needed()
    return canvas


def _stroke(pg, canvas, points) -> None:
    """Press the mouse, drag it through ``points`` (fractions of the canvas), let go."""
    box = canvas.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    pg.mouse.move(*xy[0])
    pg.mouse.down()
    for x, y in xy[1:]:
        pg.mouse.move(x, y, steps=3)  # a few points per segment: a line, fast
    pg.mouse.up()


def _src(pg, selector: str) -> str | None:
    return pg.locator(selector).get_attribute("src")


def _src_changes(pg, selector: str, before: str | None) -> str:
    pg.wait_for_function("([s, b]) => { const i = document.querySelector(s); "
                         "return i && i.getAttribute('src') && i.getAttribute('src') !== b; }",
                         arg=[selector, before])
    return _src(pg, selector)


def test_drawing_with_the_mouse_feeds_both_views(page):
    pg, _ = page
    pg.get_by_role("tab", name="Convolution").click()
    out = "#conv-out img"
    canvas = _open_drawing(pg, "conv")
    pg.wait_for_selector("#conv-msg :text('the drawing is empty')")  # nothing drawn yet
    before = _src(pg, out)
    _stroke(pg, canvas, [(0.3, 0.2), (0.3, 0.8), (0.7, 0.8)])  # an L
    pg.wait_for_selector("#conv-formula :text('input: your drawing')")
    first = _src_changes(pg, out, before)
    assert pg.inner_text("#conv-msg").strip() == ""
    _stroke(pg, canvas, [(0.2, 0.3), (0.8, 0.3)])  # a bar across: the output map follows
    _src_changes(pg, out, first)

    pg.get_by_role("tab", name="Model").click()
    canvas = _open_drawing(pg, "model")
    pic = "#model-input img"
    before = _src(pg, pic)
    _stroke(pg, canvas, [(0.3, 0.2), (0.7, 0.2), (0.5, 0.8)])  # a V on its head
    pg.wait_for_selector("#model-info :text('your drawing')")
    _src_changes(pg, pic, before)  # the network's input is now the drawing
    assert pg.inner_text("#model-pred").strip() and pg.inner_text("#model-msg").strip() == ""
    pg.locator("#model-source").get_by_label("test image").check()
    pg.wait_for_selector("#model-info :text('test image 0')")


def test_checkpoints_written_later_are_offered_after_a_rescan(page, server):
    import shutil as sh

    pg, _ = page
    _, runs, _ = server
    pg.get_by_role("tab", name="Model").click()
    sh.copyfile(runs / "lenet" / "best.pt", runs / "lenet" / "later.pt")
    pg.locator("#model-ckpt input").click()  # opening the picker rescans the folders
    pg.get_by_role("option", name="lenet/later.pt").click()
    pg.wait_for_selector("#model-info :text('lenet/later.pt')")
    sh.copyfile(runs / "lenet" / "best.pt", runs / "lenet" / "newest.pt")
    pg.locator("#model-rescan").click()  # the button beside it does the same
    pg.locator("#model-ckpt input").click()
    pg.get_by_role("option", name="lenet/newest.pt").click()
    pg.wait_for_selector("#model-info :text('lenet/newest.pt')")
    assert pg.inner_text("#model-msg").strip() == ""
