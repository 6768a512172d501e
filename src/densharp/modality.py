"""The two kinds of data densharp handles, with one spelling each: ``em`` (cryo-EM maps) and ``xray`` (crystals)."""

from __future__ import annotations

import enum
from typing import Any

from densharp.errors import InputError

_ALIASES = {"cryo-em": "em", "cryoem": "em", "electron": "em", "x-ray": "xray", "crystal": "xray"}


class Modality(str, enum.Enum):
    """Cryo-EM potential maps (electron form factors) or X-ray electron density (crystallographic cells)."""

    EM = "em"
    XRAY = "xray"

    @classmethod
    def parse(cls, value: Any) -> Modality:
        """A modality from its name; older records' ``cryo-em`` / ``x-ray`` are accepted too."""
        if isinstance(value, Modality):
            return value
        text = str(value).strip().lower()
        try:
            return cls(_ALIASES.get(text, text))
        except ValueError:
            raise InputError(f"unknown modality {value!r}; choose em or xray") from None
