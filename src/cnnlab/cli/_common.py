"""Small argument helpers shared by the command modules."""

from __future__ import annotations

import argparse


def int_tuple(text: str) -> tuple[int, ...]:
    """Parse ``"1,1,28,28"`` or ``"28x28"`` into a tuple of ints (argparse ``type=``)."""
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        if not parts:
            raise ValueError(text)
        return tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas like 1,1,28,28; got {text!r}") from None


def existing_dir(text: str) -> str:
    """An argparse ``type=`` for folders the user names (``--data-dir``): it must exist.

    Without it a mistyped ``--data-dir`` would silently fall back to another copy of
    the data found on the search path.
    """
    from pathlib import Path

    path = Path(text).expanduser()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise argparse.ArgumentTypeError(
            f"{text} {what}; pass the folder that holds the dataset files "
            "(or leave --data-dir out to search the usual places: cnnlab data)")
    return text
