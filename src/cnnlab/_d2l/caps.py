"""``Limited``: the first N batches of a loader, for the ``CNNLAB_D2L_LIMIT_BATCHES`` cap.

Example:
    >>> batches = Limited([1, 2, 3, 4], 2)
    >>> len(batches), list(batches)
    (2, [1, 2])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


class Limited:
    """The first ``limit`` batches of ``loader`` on each pass (all of them when limit is None).

    Re-iterable and sized like the loader, so the book's own loops (including
    ``fit_epoch`` methods a notebook adds to ``d2l.Trainer``) stop at the cap.
    """

    def __init__(self, loader: Iterable[Any], limit: int | None) -> None:
        self.loader, self.limit = loader, limit

    def __len__(self) -> int:
        n = len(self.loader)  # type: ignore[arg-type]
        return min(n, self.limit) if self.limit else n

    def __iter__(self) -> Iterator[Any]:
        for i, batch in enumerate(self.loader):
            if self.limit and i >= self.limit:
                return
            yield batch
