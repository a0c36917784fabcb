"""Small argument helpers shared by the command modules."""

from __future__ import annotations

import argparse


def int_tuple(text: str) -> tuple[int, ...]:
    """Parse ``"1,1,28,28"`` or ``"28x28"`` into a tuple of ints (argparse ``type=``)."""
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas like 1,1,28,28; got {text!r}") from None
