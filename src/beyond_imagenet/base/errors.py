"""Errors a user can act on, and close-match suggestions for mistyped names (docs/architecture.md, principle 6)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input: the message says what is wrong and how to fix it. The CLI prints it without a traceback."""


def plural(noun: str) -> str:
    """English plural of the last word of ``noun`` ("analysis" -> "analyses", "side study" -> "side studies")."""
    if noun.endswith("sis"):
        return noun[:-3] + "ses"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x", "sh", "ch")) else "s")


class UnknownNameError(UserError, KeyError):
    """A model, dataset or analysis name that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known) if len(known) <= 30 else f"{len(known)} names, e.g. {', '.join(known[:10])}, ..."
        super().__init__(f"unknown {kind} {name!r}.{hint} Known {plural(kind)}: {listing}.")
        self.kind, self.name, self.close_matches = kind, name, close

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]


class DatasetLayoutError(UserError):
    """A dataset directory is missing or not in the expected on-disk layout."""


class ImageDecodeError(UserError):
    """An image file could not be decoded; carries the path so it is never dropped silently."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot decode image {path}: {reason}")
        self.path, self.reason = path, reason


class ParamsError(UserError):
    """params.yaml has a wrong type, an unknown key or an invalid value."""


class WeightsUnavailableError(UserError):
    """Pretrained weights are neither cached locally nor downloadable."""


class NonFiniteLogitsError(UserError):
    """A model produced NaN or infinite logits; such samples are never counted as predictions."""


class CacheFormatError(UserError):
    """An inference cache on disk does not follow docs/cache.md."""
