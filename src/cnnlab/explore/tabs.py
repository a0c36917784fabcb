"""The layout of the three tabs and which control triggers which handler (Gradio).

The handlers live in :mod:`cnnlab.explore.app`; they compute with the pure
functions of ``conv_view``, ``model_view`` and ``runs_view``.
"""


from functools import partial

from cnnlab.explore import app, inputs
from cnnlab.explore import conv_view as cv

FIRST_KERNEL = "edge [1, -1] (7.2)"
REFRESH_S = 3.0  # the Runs tab re-reads the metrics files this often (live curves)
# output pictures: PNG (exact colours), no share button (it would upload elsewhere)
PICTURE = {"interactive": False, "format": "png", "buttons": ["download", "fullscreen"]}


def _input_controls(gr, prefix: str):
    source = gr.Radio(list(inputs.SOURCES), value="test image", label="input",
                      elem_id=f"{prefix}-source")
    index = gr.Slider(0, 9999, value=0, step=1, label="test image number",
                      elem_id=f"{prefix}-index")
    with gr.Accordion("draw or upload", open=False):
        drawing = gr.Sketchpad(label="draw: pick the brush, then draw with the mouse",
                               type="numpy", canvas_size=(280, 280), elem_id=f"{prefix}-draw")
        upload = gr.Image(label=f"upload (PNG/JPEG, up to {inputs.MAX_UPLOAD_BYTES >> 20} MiB "
                          f"and {inputs.MAX_UPLOAD_PIXELS // 10**6} megapixels)",
                          type="filepath", sources=["upload"], elem_id=f"{prefix}-upload",
                          image_mode=None)  # the path, undecoded: the caps apply first
    return source, index, drawing, upload


def _pair(gr, label: str, lo: int, hi: int, value: int, key: str, value_w: int | None = None):
    with gr.Row():
        a = gr.Slider(lo, hi, value=value, step=1, label=f"{label} h", elem_id=f"{key}-h")
        b = gr.Slider(lo, hi, value=value if value_w is None else value_w, step=1,
                      label=f"{label} w", elem_id=f"{key}-w")
    return a, b


def conv_tab(gr, demo) -> None:
    msg = gr.Markdown(elem_classes="cnnlab-msg", elem_id="conv-msg")
    with gr.Row():
        with gr.Column(scale=1):
            source, index, drawing, upload = _input_controls(gr, "conv")
            size = gr.Slider(4, cv.MAX_INPUT, value=28, step=1, label="input size n (square)",
                             elem_id="conv-size")
            preset = gr.Dropdown(list(cv.KERNELS), value=FIRST_KERNEL, label="kernel preset",
                                 elem_id="conv-preset")
            kh, kw = _pair(gr, "kernel", 1, cv.MAX_KERNEL, 1, "conv-kernel",
                           len(cv.KERNELS[FIRST_KERNEL][0]))
            grid = gr.Dataframe(value=cv.KERNELS[FIRST_KERNEL], type="array", datatype="number",
                                label="kernel weights (editable)", interactive=True,
                                elem_id="conv-grid")
            ph, pw = _pair(gr, "padding", 0, 4, 0, "conv-padding")
            sh, sw = _pair(gr, "stride", 1, 6, 1, "conv-stride")
            dh, dw = _pair(gr, "dilation", 1, 4, 1, "conv-dilation")
            with gr.Row():
                pool_mode = gr.Radio(["none", "max", "avg"], value="none", label="pooling",
                                     elem_id="conv-pool")
                pool_size = gr.Slider(1, 4, value=2, step=1, label="pool window")
                pool_stride = gr.Slider(1, 4, value=2, step=1, label="pool stride")
            example = gr.Button("the 7.3 example: 8x8, kernel 3x5, padding 0,1, stride 3,4",
                                elem_id="conv-example")
        with gr.Column(scale=2):
            formula = gr.Markdown(elem_id="conv-formula")
            step = gr.Slider(0, 4095, value=0, step=1, label="window step (output cell, "
                             "row by row)", elem_id="conv-step")
            sum_text = gr.Markdown(elem_id="conv-sum")
            with gr.Row():
                inp = gr.Image(label="input and window", **PICTURE)
                out = gr.Image(label="output", **PICTURE, elem_id="conv-out")
            with gr.Row():
                kpic = gr.Image(label="kernel", **PICTURE)
                pooled = gr.Image(label="pooled", **PICTURE)
            pool_md = gr.Markdown()
    with gr.Accordion("1x1 convolution is a matrix product (7.4)", open=False):
        weights = gr.Dataframe(value=[[1, 0, 0], [0.5, 0.5, 0], [0, 0, -1]], type="array",
                               datatype="number", label="1x1 kernel: one row per output "
                               "channel, one column per input channel", interactive=True)
        one_go = gr.Button("compute")
        one_pics = gr.Gallery(label="output channels", columns=4, height=220, format="png")
        one_md = gr.Markdown()

    ins = [source, index, drawing, upload, size, grid, ph, pw, sh, sw, dh, dw,
           pool_mode, pool_size, pool_stride, step]
    outs = [formula, inp, out, kpic, pooled, pool_md, sum_text, msg]
    update = app._safe(len(outs))(app.conv_update)
    for c in [source, index, size, grid, ph, pw, sh, sw, dh, dw, pool_mode, pool_size,
              pool_stride, step, upload]:
        c.change(update, ins, outs, trigger_mode="always_last", show_progress="hidden")
    drawing.change(update, ins, outs, trigger_mode="always_last", show_progress="hidden")
    preset.input(app._safe(4)(lambda name: (*app.kernel_preset(name), "")), [preset],
                 [grid, kh, kw, msg])
    for c in (kh, kw):
        c.input(app._safe(2)(app.kernel_resize), [grid, kh, kw], [grid, msg],
                trigger_mode="always_last")
    example.click(lambda: (8, [[1.0] * 5] * 3, 3, 5, 0, 1, 3, 4, 1, 1, 0), None,
                  [size, grid, kh, kw, ph, pw, sh, sw, dh, dw, step])
    one_go.click(app._safe(3)(app.one_by_one_update),
                 [source, index, drawing, upload, weights], [one_pics, one_md, msg])
    demo.load(update, ins, outs)


def model_tab(gr, demo, models: app.Models) -> None:
    msg = gr.Markdown(elem_classes="cnnlab-msg", elem_id="model-msg")
    state = gr.State(None)
    choices = models.choices()
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Row(equal_height=True):
                ckpt = gr.Dropdown(choices, value=choices[0] if choices else None,
                                   label="checkpoint (from the folders given)",
                                   elem_id="model-ckpt", scale=5)
                rescan = gr.Button("↻ rescan", elem_id="model-rescan", scale=1, min_width=80)
            source, index, drawing, upload = _input_controls(gr, "model")
            topk = gr.Slider(1, 10, value=5, step=1, label="top-k")
            go = gr.Button("predict", variant="primary", elem_id="model-go")
        with gr.Column(scale=1):
            info = gr.Markdown(None if choices else (
                "No checkpoints: start the app with a run folder, e.g. `cnnlab explore runs/` "
                "(`make demo` writes runs/lenet), or call `cnnlab.explore(net)`."),
                elem_id="model-info")
            label = gr.Label(label="prediction (top-k probabilities)", elem_id="model-pred")
            field = gr.Markdown(elem_id="model-field")
            pic = gr.Image(label="input (red box: receptive field of the clicked unit)",
                           **PICTURE, elem_id="model-input")
    maps = gr.Image(label="feature maps of every convolution stage, all channels (click a "
                    "unit)", **PICTURE, elem_id="model-maps")
    with gr.Row():
        kernels = gr.Image(label="first layer's kernels", **PICTURE)
        summary = gr.Textbox(label="layers (cnnlab summary)", lines=14, max_lines=30,
                             elem_id="model-summary")
    with gr.Accordion("activation statistics: test images vs noise vs unfamiliar shapes "
                      "(7.6 exercise)", open=False):
        stats_go = gr.Button("compute (256 images of each)")
        stats_plot = gr.Plot(label="activations")
        stats_table = gr.Textbox(label="per layer", lines=12, max_lines=40,
                                 elem_id="model-stats")

    ins = [ckpt, source, index, drawing, upload, topk]
    outs = [state, label, pic, maps, kernels, summary, info, msg]
    update = app._safe(len(outs))(partial(app.model_update, models))
    go.click(update, ins, outs)
    if choices:
        demo.load(update, ins, outs)
    for c in (ckpt, source, index, topk, upload, drawing):
        c.change(update, ins, outs, trigger_mode="always_last", show_progress="hidden")

    def click(label_, a, evt: gr.SelectData):
        return app._safe(4)(partial(app.model_click, models))(label_, a, evt)

    maps.select(click, [ckpt, state], [pic, maps, field, msg])

    def refresh(current):  # checkpoints written since the app started (the same folders)
        names, keep, note = models.refresh(current)
        return gr.update(choices=names, value=keep), note

    rescan.click(app._safe(2)(refresh), [ckpt], [ckpt, msg], api_name="rescan_checkpoints")
    ckpt.focus(app._safe(2)(refresh), [ckpt], [ckpt, msg], show_progress="hidden",
               api_name=False)
    stats_go.click(app._safe(3)(partial(app.stats_update, models)), [ckpt],
                   [stats_plot, stats_table, msg])


def runs_tab(gr, demo, library) -> None:
    msg = gr.Markdown(elem_id="runs-msg")
    names = library.runs()
    chosen = gr.Dropdown(names, value=names[:2], multiselect=True, max_choices=4,
                         label="runs to plot (pick two to compare them)", elem_id="runs-pick")
    with gr.Row():
        loss = gr.LinePlot(x="epoch", y="value", color="series", title="loss",
                           elem_id="runs-loss")
        acc = gr.LinePlot(x="epoch", y="value", color="series", title="accuracy",
                          elem_id="runs-acc")
    table = gr.Dataframe(headers=list(app.rv.TABLE_COLUMNS), interactive=False,
                         label="final metrics and settings (click a header to sort)",
                         elem_id="runs-table")
    diff = gr.Dataframe(headers=["setting", "first run", "second run"], interactive=False,
                        label="how the two runs' configs differ")
    outs = [table, loss, acc, diff, msg]
    update = app._safe(len(outs))(partial(app.runs_update, library))
    chosen.change(update, [chosen], outs)
    def tick(picked):  # also offers the runs that started since the page was opened
        return (*update(picked), gr.update(choices=library.runs()))

    timer = gr.Timer(REFRESH_S)
    timer.tick(tick, [chosen], [*outs, chosen], show_progress="hidden")
    demo.load(update, [chosen], outs)
