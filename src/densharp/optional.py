"""Optional dependencies, checked without importing them: what is missing, and the one line that says so.

The learned models need ``torch`` and ``safetensors`` (the ``[ml]`` extra); plots need ``matplotlib``. Checking with
:func:`importlib.util.find_spec` keeps ``densharp --help``, ``info`` and the classical commands fast and torch-free.
"""

from __future__ import annotations

import importlib.util
import sys

from densharp.errors import InputError

#: the install line for the learned-model extra
ML_INSTALL = "pip install torch==2.13.0 'densharp[ml]'"

#: extra -> the modules it needs, in the order they are reported
EXTRAS: dict[str, tuple[str, ...]] = {"ml": ("torch", "safetensors"), "plot": ("matplotlib",)}


def module_available(name: str) -> bool:
    """True if ``name`` can be imported (a module blocked as ``sys.modules[name] = None`` counts as missing)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(extra: str = "ml") -> list[str]:
    """The modules of ``extra`` (``"ml"`` or ``"plot"``) that are not installed."""
    return [m for m in EXTRAS[extra] if not module_available(m)]


def ml_available() -> tuple[bool, str]:
    """``(True, "")`` when the learned models can run, else ``(False, reason)`` naming exactly what is missing."""
    missing = missing_modules("ml")
    if not missing:
        return True, ""
    if missing == ["safetensors"]:
        return False, "safetensors is not installed (torch is): pip install safetensors, or " + ML_INSTALL
    if missing == ["torch"]:
        return False, f"torch is not installed: {ML_INSTALL}"
    return False, f"torch and safetensors are not installed: {ML_INSTALL}"


def require_ml(what: str = "learned models") -> None:
    """Raise a one-line :class:`~densharp.errors.InputError` if the learned-model extra is incomplete."""
    ok, why = ml_available()
    if not ok:
        raise InputError(f"{what} need the [ml] extra: {why}")
