"""The names the data layer accepts: datasets and augmentations (no torch import).

One place for both lists, so that ``TrainConfig``, ``DataModule`` and the CLI's
``choices=`` agree; importing this module stays cheap for ``cnnlab --help``.

Example:
    >>> parse_augment("crop+flip") == parse_augment("crop,flip") == ("crop", "flip")
    True
    >>> DATASET_NAMES
    ('fashion-mnist', 'mnist', 'synthetic')
"""

from __future__ import annotations

from cnnlab.errors import ConfigError

DATASET_NAMES = ("fashion-mnist", "mnist", "synthetic")
AUGMENTS = ("crop", "flip", "erase")


def parse_augment(augment) -> tuple[str, ...]:
    """Normalise ``augment``: None, ``"crop"``, ``"crop+flip"``, ``"crop,flip"`` or a list.

    ``+`` and ``,`` both join names; ``True`` means the usual ``crop+flip``; ``None``,
    ``""`` and ``"none"`` mean no augmentation. Unknown names are a ConfigError naming
    ``augment=``.
    """
    if augment is None or augment is False or augment == "" or augment == "none":
        return ()
    if augment is True:
        return ("crop", "flip")
    if isinstance(augment, str):
        parts = augment.replace("+", ",").split(",")
    else:
        try:
            parts = list(augment)
        except TypeError:
            raise ConfigError(f"augment must be a string like 'crop+flip' or a list of "
                              f"names, got {augment!r}") from None
    names = tuple(str(p).strip().lower() for p in parts if str(p).strip())
    bad = [n for n in names if n not in AUGMENTS]
    if bad:
        raise ConfigError(f"unknown augmentation {bad[0]!r}; use any of {', '.join(AUGMENTS)} "
                          "joined by '+' or ',', e.g. augment='crop+flip'")
    return tuple(dict.fromkeys(names))
