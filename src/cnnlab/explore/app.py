"""The explore app: the three views as Gradio tabs, and how it is served.

Only this module imports Gradio. Its analytics are turned off before the import
(``GRADIO_ANALYTICS_ENABLED=False``) and the theme uses the fonts Gradio ships, so
the page loads nothing from the internet. Every handler turns a failure into a
message in the page; the server keeps running.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections import OrderedDict
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.explore import conv_view as cv
from cnnlab.explore import inputs
from cnnlab.explore import model_view as mv
from cnnlab.explore import runs_view as rv
from cnnlab.explore.paths import Library

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
YOUR_MODEL = "(your model)"
CSS = ".cnnlab-msg {color: #b00020; font-weight: 600}"
INLINE_HEIGHT = 900  # pixels of the iframe under a notebook cell (Gradio: 500, too small)


def import_gradio():
    """Gradio with its analytics off; a CnnlabError that says how to install it if missing."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("GRADIO_TELEMETRY_ENABLED", "False")
    try:
        with warnings.catch_warnings():  # in Jupyter without ipywidgets, tqdm (a Gradio
            # dependency) warns at import that it cannot draw widgets; the app uses none
            warnings.filterwarnings("ignore", message="IProgress not found")
            import gradio as gr
    except ImportError:
        raise CnnlabError("cnnlab explore needs Gradio, which is not installed; install it "
                          "with: pip install 'cnnlab[explore]'") from None
    return gr


def _message(e: BaseException) -> str:
    if isinstance(e, (CnnlabError, ValueError, OSError)):
        return f"⚠ {' '.join(str(e).split())[:400]}"
    return f"⚠ internal error: {type(e).__name__}: {' '.join(str(e).split())[:300]}"


def _safe(n_out: int):
    """Run a handler; on failure leave its outputs as they are and fill the message (last)."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args):
            import gradio as gr

            try:
                return fn(*args)
            except Exception as e:  # noqa: BLE001 - a bad file or value must not stop the server
                return (*[gr.skip()] * (n_out - 1), _message(e))
        return inner
    return wrap


# ------------------------------------------------------------------ Convolution

def conv_update(source, index, drawing, upload, size, grid, ph, pw, sh, sw, dh, dw,
                pool_mode, pool_size, pool_stride, step):
    pil, invert, what = inputs.pick(source, "fashion-mnist", index, drawing, upload)
    X = inputs.grey_input(pil, int(size), invert)
    K = cv.parse_kernel(grid)
    r = cv.convolve(X, K, (ph, pw), (sh, sw), (dh, dw))
    w = cv.window(r, int(step))
    inp, out = cv.step_pictures(r, w)
    md = cv.formula_text(r) + f"\n\ninput: {what}, {X.shape[0]}x{X.shape[1]}"
    pooled, pool_md = None, ""
    if pool_mode in ("max", "avg"):
        P, pool_text = cv.pool(r.output, pool_mode, int(pool_size), int(pool_stride))
        pooled = cv.output_picture(P, label=f"{pool_mode} pooled output: blue < 0 < red")
        pool_md = f"**{pool_mode} pooling**\n\n```\n{pool_text}\n```"
    return md, inp, out, cv.kernel_picture(K), pooled, pool_md, cv.window_sum_text(r, w), ""


def kernel_preset(name):
    rows = cv.KERNELS[name]
    return rows, len(rows), len(rows[0])


def kernel_resize(grid, kh, kw):
    return cv.resize_kernel(cv.parse_kernel(grid), int(kh), int(kw)).tolist(), ""


def one_by_one_update(source, index, drawing, upload, weights):
    pil, invert, _ = inputs.pick(source, "fashion-mnist", index, drawing, upload)
    r = cv.one_by_one(inputs.grey_input(pil, 16, invert), weights)
    pics = [cv.output_picture(r["conv"][o], target=160, label=f"output channel {o}")
            for o in range(min(r["conv"].shape[0], 4))]
    md = (f"X: 3 channels (the image, its mirror, its negative) of 16x16; K: "
          f"{r['K'].shape[0]}x3. `ops.conv2d` with a 1x1 kernel and the matrix product "
          f"K ({r['K'].shape[0]}x3) @ X (3x256) (`ops.corr2d_multi_in_out_1x1`) differ by at "
          f"most **{r['max_diff']:.2g}**: a 1x1 convolution mixes channels, pixel by pixel.")
    return pics, md, ""


# ------------------------------------------------------------------ Model

class Models:
    """Loaded models by label (a few kept), the notebook's own model among them."""

    def __init__(self, library: Library, own: mv.Loaded | None = None, keep: int = 3):
        self.library, self.own, self.keep = library, own, keep
        self.cache: OrderedDict[str, mv.Loaded] = OrderedDict()

    def choices(self) -> list[str]:
        """What the picker offers, read from disk now (checkpoints written since count)."""
        return ([YOUR_MODEL] if self.own is not None else []) + self.library.checkpoints()

    def refresh(self, current: str | None) -> tuple[list[str], str | None, str]:
        """The picker rescanned: (choices, the entry to keep selected, a note)."""
        choices = self.choices()
        keep = current if current in choices else (choices[0] if choices else None)
        note = "" if choices else ("still no checkpoints under the folders given "
                                   f"({', '.join(str(r) for r in self.library.roots) or 'none'})")
        return choices, keep, note

    def get(self, label: str) -> mv.Loaded:
        if label == YOUR_MODEL and self.own is not None:
            return self.own
        if not label:
            raise CnnlabError("pick a checkpoint (start cnnlab explore with a run folder, "
                              "e.g. cnnlab explore runs/)")
        path = self.library.resolve(label)  # refuses anything not listed
        if label not in self.cache:
            self.cache[label] = mv.from_checkpoint(path, label)
            while len(self.cache) > self.keep:
                self.cache.popitem(last=False)
        self.cache.move_to_end(label)
        return self.cache[label]


def model_update(models: Models, label, source, index, drawing, upload, topk):
    m = models.get(label)
    if source == "test image":
        pil, invert, what = inputs.dataset_image(m.dataset, index)
    else:
        pil, invert, what = inputs.pick(source, m.dataset, index, drawing, upload)
    a = mv.analyze(m, mv.model_input(m, pil, invert), topk=int(topk))
    info = (f"**{m.label}**: {what}; input {m.in_channels}x{m.size[0]}x{m.size[1]}. "
            "Click a unit in the feature maps to see its receptive field.")
    return (a, a.top, mv.input_picture(a.X), a.picture, m.kernels, m.summary_text, info, "")


def model_click(models: Models, label, a: mv.Analysis | None, evt):
    if a is None:
        raise CnnlabError("show a prediction first")
    x, y = (int(v) for v in evt.index[:2])
    hit = a.unit_at(x, y)
    if hit is None:
        raise CnnlabError("that point is between the maps; click inside one map")
    stage, ch, i, j = hit
    m = models.get(label)
    top, left, bottom, right, text = mv.field_box(m, a.stages[stage], i, j)
    return (mv.input_picture(a.X, (top, left, bottom, right)), mv.mark_unit(a, *hit),
            f"channel {ch}: {text}", "")


def stats_update(models: Models, label):
    r = mv.activation_stats(models.get(label))
    return r.figure, r.table(), ""


# ------------------------------------------------------------------ Runs

def runs_update(library: Library, chosen):
    runs = {label: library.resolve(label, "run") for label in library.runs()}
    import pandas as pd

    table = pd.DataFrame(rv.table(runs), columns=list(rv.TABLE_COLUMNS))
    picked = {k: runs[k] for k in (chosen or []) if k in runs} or dict(list(runs.items())[:2])
    pts = pd.DataFrame(rv.curves(picked), columns=["epoch", "value", "series"])
    loss = pts[pts.series.str.endswith("loss")]
    acc = pts[pts.series.str.endswith("acc")]
    diff = []
    if len(picked) == 2:
        a, b = (rv.read_config(p) for p in picked.values())
        diff = rv.config_diff(a, b)
    note = "" if runs else ("no runs under the folders given; start with e.g. "
                            "`cnnlab explore runs/`")
    return table, loss, acc, diff, note


def build(library: Library, own: mv.Loaded | None = None):
    """The app (a gradio Blocks) for the run folders/checkpoints in ``library``."""
    gr = import_gradio()
    from cnnlab.explore.tabs import conv_tab, model_tab, runs_tab

    models = Models(library, own)
    with gr.Blocks(title="cnnlab explore", analytics_enabled=False) as demo:
        gr.Markdown("# cnnlab explore\nInside your own convolutional network "
                    "(d2l chapters 7-8). Everything runs on this machine.")
        with gr.Tabs():
            with gr.Tab("Convolution", id="conv"):
                conv_tab(gr, demo)
            with gr.Tab("Model", id="model"):
                model_tab(gr, demo, models)
            with gr.Tab("Runs", id="runs"):
                runs_tab(gr, demo, library)
    return demo


def launch(library: Library, own: mv.Loaded | None = None, host: str = "127.0.0.1",
           port: int | None = None, open_browser: bool = True, inline: bool | None = None,
           block: bool = True) -> Any:
    """Serve the app; ``block=False`` returns at once (notebooks, tests)."""
    demo = build(library, own)
    theme = import_gradio().themes.Default()  # its fonts are files inside Gradio
    # share=False always: a share link would tunnel the app through someone else's server.
    # In a notebook Gradio shows the app under the cell: an iframe on 127.0.0.1, or on
    # Colab one that reaches the port through Colab's own proxy (google.colab.kernel).
    demo.launch(server_name=host, server_port=port, inbrowser=open_browser, share=False,
                inline=inline, prevent_thread_lock=True, max_file_size=inputs.MAX_UPLOAD_BYTES,
                show_error=True, ssr_mode=False, mcp_server=False, quiet=True, theme=theme,
                css=CSS, footer_links=["settings"], height=INLINE_HEIGHT)
    running = Running(demo)
    print(f"cnnlab explore: {running.where()} "
          f"({'Ctrl-C stops it' if block else 'app.close() stops it'})", flush=True)
    if block:
        try:
            while demo.is_running:
                time.sleep(0.2)
        finally:  # Ctrl-C: stop the server, then the command exits
            demo.close()
    return running


class Running:
    """The app serving in the background: ``url``, ``port``, ``close()``; ``demo`` is the
    Gradio Blocks. Its repr is one line (a notebook prints it under the app)."""

    def __init__(self, demo: Any):
        self.demo = demo

    @property
    def url(self) -> str:
        return self.demo.local_url

    @property
    def port(self) -> int:
        return int(self.demo.server_port)

    @property
    def on_colab(self) -> bool:
        """Whether Gradio found Colab and showed the app through Colab's port proxy."""
        return bool(getattr(self.demo, "is_colab", False))

    def where(self) -> str:
        if self.on_colab:  # 127.0.0.1 is the Colab machine, not the learner's computer
            return f"shown below through Colab's proxy of port {self.port}"
        return self.url

    def close(self) -> None:
        self.demo.close()

    def __repr__(self) -> str:
        state = "running" if self.demo.is_running else "closed"
        return f"<cnnlab explore app, {state}: {self.where()}>"
