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


def _flags_of(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, argparse.Action]:
    """``dest -> action`` of ``parser`` and of the sub-commands named in ``argv``.

    The innermost sub-command wins, so ``out_dir`` maps to the flag of the command
    that ran. A sub-parser's ``param_flags`` default adds Python names whose CLI flag
    has another dest (``input_size`` -> ``--input``).
    """
    found: dict[str, argparse.Action] = {}
    words = iter(argv)
    while parser is not None:
        sub = None
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                sub = action
            elif action.option_strings and action.dest != "help":
                found[action.dest] = action
        for name, flag in parser._defaults.get("param_flags", {}).items():
            found[name] = next((a for a in parser._actions if flag in a.option_strings),
                               found.get(name))
        parser = next((sub.choices[w] for w in words if sub and w in sub.choices), None)
    return {k: v for k, v in found.items() if v is not None}


def cli_flags(message: str, parser: argparse.ArgumentParser, argv: list[str]) -> str:
    """Rewrite the Python parameter names of a library error into the CLI's flags.

    Library errors name what a Python caller passed (``resize=224``); on the command line
    the same advice reads ``--resize 224``. Only names that are flags of the command
    that ran are rewritten.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> _ = p.add_argument("--batch-size", type=int)
        >>> _ = p.add_argument("--out", dest="out_dir")
        >>> cli_flags("use batch_size=64 or pick another out_dir=", p, [])
        'use --batch-size 64 or pick another --out'
        >>> cli_flags("device='cuda' but no GPU; use device='cpu'", p, [])
        "device='cuda' but no GPU; use device='cpu'"
    """
    import re

    actions = _flags_of(parser, argv)

    def flag(m: re.Match) -> str:
        action = actions.get(m.group(1))
        if action is None:
            return m.group(0)
        longest = max(action.option_strings, key=len)
        value = m.group(2).strip("'\"")
        if value in ("True", "False") and action.nargs == 0:
            negative = next((s for s in action.option_strings if s.startswith("--no-")), None)
            longest = negative if value == "False" and negative else longest.replace("--no-", "--")
            return longest
        return f"{longest} {value}" if value else longest

    return re.sub(r"(?<![\w.\-])([a-z][a-z0-9_]*)=('[^'\s]*'|\"[^\"\s]*\"|[^\s,;()]*)", flag,
                  message)
