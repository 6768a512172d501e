"""Simulated training data (partial)."""

from __future__ import annotations

from densharp.simulate.structure import load_structure

__all__ = ["load_structure"]
