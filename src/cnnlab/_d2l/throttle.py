"""PNG redraws of the d2l board and animator, at most one per interval outside Jupyter.

The book redraws its figure at every plotted point. In a Jupyter kernel that is the
live plot; elsewhere cnnlab writes the figure to a PNG file instead, and writing one
per point (each a full matplotlib render) would cost more than the training steps
of a small model. So outside Jupyter a figure is written at its first point, then at
most once per ``CNNLAB_D2L_PNG_INTERVAL`` seconds (default 2; 0 writes every
point); a point that came in between marks the figure stale, and the training
functions (``Trainer.fit``, ``train_ch3``, ``train_ch6``) write a stale figure when
they end, as does the interpreter at exit, so the file always ends complete.

Example:
    >>> class Fig(ThrottledRender):
    ...     def render(self):
    ...         self.png_saved()
    ...     def writes_png(self):
    ...         return True
    ...     def png_file(self):
    ...         return "fig.png"
    >>> fig = Fig()
    >>> for _ in range(5):
    ...     fig.refresh()  # the first is written; the rest wait for the interval
    >>> fig.png_writes, fig.stale
    (1, True)
    >>> fig.flush()
    >>> fig.png_writes, fig.stale
    (2, False)
"""

from __future__ import annotations

import atexit
import os
import time
import weakref
from typing import Any

from cnnlab.errors import ConfigError

DEFAULT_INTERVAL_S = 2.0

# figures with a point not yet written, written at interpreter exit
_STALE: weakref.WeakSet = weakref.WeakSet()
# PNG file -> the figure that drew into it last (an older figure must not overwrite it)
_LATEST: dict[str, weakref.ref] = {}


def png_interval() -> float:
    """Seconds between two PNG writes of one figure (``CNNLAB_D2L_PNG_INTERVAL``)."""
    raw = os.environ.get("CNNLAB_D2L_PNG_INTERVAL", "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also catches nan
        raise ConfigError(f"CNNLAB_D2L_PNG_INTERVAL must be a number of seconds >= 0, "
                          f"got {raw!r}; unset it or use e.g. 2")
    return value


class ThrottledRender:
    """Mixin: ``refresh()`` renders now, or later when the PNG file was written recently.

    The class provides ``render()`` (which calls :meth:`png_saved` after each PNG
    write), ``writes_png()`` (False in Jupyter, where every refresh renders) and
    ``png_file()`` (the PNG file's path).
    """

    png_writes = 0  # PNG files written so far by this figure
    stale = False  # a point came after the last PNG write
    _png_written_at: float | None = None

    def render(self, **kwargs: Any) -> None:  # pragma: no cover - provided by the class
        raise NotImplementedError

    def writes_png(self) -> bool:  # pragma: no cover - provided by the class
        raise NotImplementedError

    def png_file(self) -> str:  # pragma: no cover - provided by the class
        raise NotImplementedError

    def refresh(self, **render_kwargs: Any) -> None:
        """Render, unless the PNG file was written less than the interval ago."""
        if not self.writes_png():
            self.render(**render_kwargs)
            return
        _LATEST[os.path.abspath(self.png_file())] = weakref.ref(self)
        last = self._png_written_at
        if last is not None and time.monotonic() - last < png_interval():
            self.stale = True
            _STALE.add(self)
            return
        self.render(**render_kwargs)

    def flush(self) -> None:
        """Write the figure if a point came since its last PNG write."""
        if self.stale:
            self.render()

    def png_saved(self) -> None:
        """Record a PNG write (``render`` calls this)."""
        self._png_written_at = time.monotonic()
        self.png_writes += 1
        self.stale = False
        _STALE.discard(self)


@atexit.register
def _flush_all() -> None:
    for fig in list(_STALE):
        latest = _LATEST.get(os.path.abspath(fig.png_file()))
        if latest is not None and latest() is not fig:
            continue  # a newer figure has drawn into this file since
        try:
            fig.flush()
        except Exception as e:  # at exit: say so, never a traceback
            print(f"cnnlab.d2l: could not write the last plot: {e}")
