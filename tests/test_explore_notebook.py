"""``cnnlab.explore(net)`` in a real notebook kernel: what Jupyter and Colab show.

A real IPython kernel (ipykernel, driven by jupyter_client as Jupyter drives it) runs
the cell a learner types. The test reads the display message the kernel sends to the
notebook page (an iframe on 127.0.0.1 with the app's port; on Colab a script that asks
Colab's port proxy for that port), fetches that address as the page would, and closes
the app. Where chromium and Playwright are there, that iframe is rendered in a real
browser, and the app inside it shows the notebook's model's prediction.

What is not verified here: Colab's own proxy (``google.colab.kernel.proxyPort``) in a
real Colab page; the kernel is told it is on Colab the way Gradio detects it (the shell
object's class lives in ``google.colab``), nothing of cnnlab or Gradio is replaced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.request

import pytest

pytest.importorskip("gradio", reason="the explore extra is not installed: pip install "
                    "'cnnlab[explore]'")
pytest.importorskip("ipykernel", reason="no ipykernel (in the dev extra): pip install "
                    "'cnnlab[dev]'")
jupyter_client = pytest.importorskip("jupyter_client", reason="no jupyter_client (in the "
                                     "dev extra): pip install 'cnnlab[dev]'")

pytestmark = pytest.mark.slow
CELL = "import cnnlab\ncnnlab.explore(cnnlab.create_model('lenet'))"
TIMEOUT = 240  # seconds for one cell: the kernel imports torch and Gradio


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("notebook")
    env = {**os.environ, "CNNLAB_NATIVE": "0"}  # the C kernels are not what is tested here
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3", cwd=str(cwd),
                                                     env=env)
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def run_cell(kc, code: str) -> list[dict]:
    """Execute ``code`` as a notebook cell; the messages the notebook page would get."""
    msgs: list[dict] = []
    reply = kc.execute_interactive(code, timeout=TIMEOUT, output_hook=msgs.append)
    errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
    assert reply["content"]["status"] == "ok", errors
    return msgs


def of_type(msgs: list[dict], kind: str) -> list[dict]:
    return [m["content"] for m in msgs if m["msg_type"] == kind]


def stdout(msgs: list[dict]) -> str:
    return "".join(c["text"] for c in of_type(msgs, "stream") if c["name"] == "stdout")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def offered_checkpoints(base: str) -> list[str]:
    """The checkpoint picker's entries in the app's config (what its page is built from)."""
    config = get_json(f"{base}config")
    pickers = [c for c in config["components"]
               if c.get("props", {}).get("elem_id") == "model-ckpt"]
    assert len(pickers) == 1
    return [c[0] if isinstance(c, list) else c for c in pickers[0]["props"]["choices"]]


def test_jupyter_shows_the_app_inline_and_close_stops_it(kernel):
    msgs = run_cell(kernel, CELL)
    shown = of_type(msgs, "display_data")
    assert len(shown) == 1, shown
    html = shown[0]["data"]["text/html"]
    m = re.search(r'<iframe src="(http://127\.0\.0\.1:(\d+)/)"[^>]* height="(\d+)"', html)
    assert m, html
    url, port = m.group(1), int(m.group(2))
    assert int(m.group(3)) >= 800  # tall enough for the views, not Gradio's 500
    # the value of the cell is one line, not a dump of the app's internals
    result = of_type(msgs, "execute_result")[0]["data"]["text/plain"]
    assert result == f"<cnnlab explore app, running: {url}>"
    assert f"cnnlab explore: {url} (app.close() stops it)" in stdout(msgs)
    stderr = "".join(c["text"] for c in of_type(msgs, "stream") if c["name"] == "stderr")
    assert "IProgress" not in stderr  # no red warning about widgets under the cell
    value = of_type(run_cell(kernel, "app = _\napp.port"), "execute_result")
    assert value[0]["data"]["text/plain"] == str(port)

    with urllib.request.urlopen(url, timeout=30) as r:  # what the iframe loads
        assert r.status == 200 and b"<html" in r.read()
    assert get_json(f"{url}config")["title"] == "cnnlab explore"
    assert offered_checkpoints(url) == ["(your model)"]  # the notebook's own network

    run_cell(kernel, "app.close()")
    assert not answers(url)
    value = of_type(run_cell(kernel, "app"), "execute_result")
    assert value[0]["data"]["text/plain"] == f"<cnnlab explore app, closed: {url}>"


def test_the_inline_iframe_shows_the_app_in_a_browser(kernel):
    """The display message's HTML, as a notebook page puts it, in a real browser."""
    pytest.importorskip("playwright.sync_api", reason="playwright (pip) drives the browser")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium browser (apt-get install chromium; make test does it as root)")
    from playwright.sync_api import sync_playwright

    msgs = run_cell(kernel, "inline_app = " + CELL.splitlines()[1])
    html = of_type(msgs, "display_data")[0]["data"]["text/html"]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.set_default_timeout(40_000)
                page.set_content(f"<html><body><h1>notebook</h1>{html}</body></html>")
                frame = page.frame_locator("iframe")
                frame.locator("#conv-formula :text('output')").wait_for()  # the first view
                frame.get_by_role("tab", name="Model").click()
                frame.locator("#model-info :text('test image 0')").wait_for()
                assert "your model" in frame.locator("#model-info").inner_text()
                assert frame.locator("#model-pred").inner_text().strip()  # its top-k bars
                assert frame.locator("#model-msg").inner_text().strip() == ""
            finally:
                browser.close()
    finally:
        run_cell(kernel, "inline_app.close()")


def test_colab_shows_the_app_through_its_port_proxy(kernel):
    # Gradio detects Colab by the class of the kernel's shell (google.colab._shell.Shell);
    # the kernel is told so, and told back afterwards. Nothing else is changed.
    pretend = ("ip = get_ipython(); _was = type(ip)\n"
               "ip.__class__ = type('Shell', (_was,), {'__module__': 'google.colab._shell'})\n")
    try:
        msgs = run_cell(kernel, pretend + "colab_app = " + CELL.splitlines()[1])
    finally:
        run_cell(kernel, "get_ipython().__class__ = _was")
    shown = of_type(msgs, "display_data")
    assert len(shown) == 1 and "text/html" not in shown[0]["data"], shown
    script = shown[0]["data"]["application/javascript"]
    assert "google.colab.kernel.proxyPort(port" in script
    port = int(of_type(run_cell(kernel, "colab_app.port"), "execute_result")[0]["data"]
               ["text/plain"])
    assert re.search(rf"\}}\)\({port}, \"/\"", script), script[-300:]  # that port, at /
    # 127.0.0.1 is the Colab machine: the learner is not sent there
    out = stdout(msgs)
    assert f"shown below through Colab's proxy of port {port}" in out and "127.0.0.1" not in out
    url = f"http://127.0.0.1:{port}/"  # what Colab's proxy reaches on the kernel's machine
    assert answers(url) and offered_checkpoints(url) == ["(your model)"]
    run_cell(kernel, "colab_app.close()")
    assert not answers(url)
