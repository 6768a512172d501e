"""Model cards: what a set of weights is and how it must be used, read without importing torch.

A :class:`ModelCard` comes from the shipped registry (``weights/registry.json`` in the package, or the folder named
by ``DENSHARP_WEIGHTS_DIR``) or from the header of a ``.safetensors`` file. It carries the architecture, the
modality, the patch size, the training domain and the rules shared with training: the
:class:`~densharp.conditioning.ConditioningRule` (grid voxel, default and finest target, derived from the pair
configuration recorded with the weights) and the :class:`~densharp.normalisation.NormKind`.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from densharp.conditioning import ConditioningRule
from densharp.errors import CheckpointError, InputError
from densharp.modality import Modality
from densharp.normalisation import NormKind

#: environment variable naming a folder with ``registry.json`` and weights that replaces the shipped one
WEIGHTS_ENV = "DENSHARP_WEIGHTS_DIR"
#: value of the ``format`` metadata key in exported weights
WEIGHTS_FORMAT = "densharp-weights"
#: largest safetensors header read (the metadata of our weights is a few kB)
MAX_HEADER_BYTES = 1 << 24

#: learned method -> architecture; shipped default model per (modality, architecture)
DEFAULT_MODELS: dict[tuple[Modality, str], str] = {
    (Modality.EM, "unet"): "unet-em",
    (Modality.EM, "vae"): "vae-em",
    (Modality.EM, "report-vae"): "report-vae-em",
    (Modality.XRAY, "unet"): "unet-xray",
}


@dataclass(frozen=True)
class ModelCard:
    """What a set of weights is (see the module docstring).

    Attributes
    ----------
    name
        Registry name, or the path of a weights file.
    path
        Where the weights are (a filesystem path or a packaged resource, as text).
    sha256
        Pinned digest (registry entries); ``None`` for a user's file (recorded when loaded).
    architecture, model_kwargs
        Network name and config fields (rebuild with ``densharp.ml.nets.build_model``).
    modality
        What the model was trained on.
    patch_zyx
        Training patch = inference tile (voxels).
    resolution_range_A
        Input resolutions (Å) seen in training.
    conditioning
        Grid voxel and target-resolution rules (shared with the pair simulators).
    normalisation
        How inputs are normalised (shared with training).
    extrapolation_gain
        X-ray models: ``(u, g)`` rows, the least-squares gain of the model's reflections beyond the data's
        resolution against the truth at ``u = d_input / d``, measured on held-out simulations
        (:mod:`densharp.reflections`); ``None`` when not measured.
    """

    name: str
    path: str
    sha256: str | None
    architecture: str
    model_kwargs: dict[str, Any]
    modality: Modality
    patch_zyx: tuple[int, int, int]
    resolution_range_A: tuple[float, float]
    conditioning: ConditioningRule
    normalisation: NormKind
    training_run: str = ""
    best_val: dict[str, Any] | None = None
    extrapolation_gain: tuple[tuple[float, float], ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def domain_reasons(self, modality: Modality, d_input_A: float) -> list[str]:
        """Why an input lies outside what the model was trained on (empty when inside).

        The voxel size is not a reason: every input is resampled to the model's grid (the conditioning rule).
        """
        reasons = []
        if modality is not self.modality:
            reasons.append(f"input modality {modality.value} but the model was trained on {self.modality.value}")
        lo, hi = self.resolution_range_A
        if not lo - 1e-6 <= d_input_A <= hi + 1e-6:
            reasons.append(f"resolution {d_input_A:.3g} Å outside the model's {lo:g}–{hi:g} Å")
        return reasons

    def record(self) -> dict[str, Any]:
        """JSON-ready summary for run records."""
        return {
            "name": self.name,
            "architecture": self.architecture,
            "sha256": self.sha256,
            "modality": self.modality.value,
            "resolution_range_A": list(self.resolution_range_A),
            "patch_zyx": list(self.patch_zyx),
            "conditioning": self.conditioning.to_dict(),
            "normalisation": self.normalisation.value,
            "training_run": self.training_run,
        }


def card_from_metadata(name: str, path: str, sha256: str | None, meta: Mapping[str, Any]) -> ModelCard:
    """Build a card from weights metadata (registry entry or safetensors header; JSON fields already decoded).

    Raises
    ------
    CheckpointError
        A field is missing or malformed (the message names it).
    """
    try:
        arch = str(meta["architecture"])
        kwargs = _json(meta.get("model_kwargs") or {})
        domain = _json(meta.get("training_domain") or {})
        modality = Modality.parse(meta.get("modality") or domain.get("modality") or "em")
        patch = _json(meta.get("patch_size_zyx"))
        if not patch:
            raise KeyError("patch_size_zyx")
        patch_zyx = tuple(int(p) for p in patch)
        rr = _json(meta.get("resolution_range_A")) or domain.get("resolution_range_A")
        if not rr:
            raise KeyError("resolution_range_A")
        res_range = (float(rr[0]), float(rr[1]))
        if meta.get("conditioning"):
            rule = ConditioningRule.from_dict(_json(meta["conditioning"]))
        elif meta.get("pair_config"):
            rule = ConditioningRule.from_pair_config(_json(meta["pair_config"]))
        else:  # weights exported before the rule was recorded: the voxel range they give
            vr = meta.get("voxel_range_A") or domain.get("voxel_range_A") or (0.9, 1.2)
            rule = ConditioningRule(voxel_range_A=(float(vr[0]), float(vr[1])))
        norm = NormKind.parse(_json(meta.get("normalisation")) if meta.get("normalisation") else None)
    except (KeyError, TypeError, ValueError, IndexError, InputError) as exc:
        raise CheckpointError(f"{name}: weights metadata is incomplete or malformed ({exc}); re-export them") from exc
    if len(patch_zyx) != 3 or min(patch_zyx) < 1 or max(patch_zyx) > 512:
        raise CheckpointError(f"{name}: patch_size_zyx {patch_zyx} is not 3 sizes in 1..512; re-export the weights")
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"{name}: model_kwargs is not a JSON object; re-export the weights")
    best = _json(meta.get("best_val")) if meta.get("best_val") else None
    xg = _json(meta.get("extrapolation_gain")) if meta.get("extrapolation_gain") else None
    try:
        gain = tuple((float(u), float(g)) for u, g in xg) if xg else None
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: extrapolation_gain is not a list of (u, g) rows ({exc}); re-export") from exc
    return ModelCard(
        name=name,
        path=path,
        sha256=sha256,
        architecture=arch,
        model_kwargs=dict(kwargs),
        modality=modality,
        patch_zyx=patch_zyx,  # type: ignore[arg-type]
        resolution_range_A=res_range,
        conditioning=rule,
        normalisation=norm,
        training_run=str(meta.get("training_run") or ""),
        best_val=best if isinstance(best, dict) else None,
        extrapolation_gain=gain,
    )


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) and v[:1] in ("[", "{", '"') else v


# ----------------------------------------------------------------------------------------------- registry
def weights_dir() -> Path | Any:
    """The folder holding ``registry.json`` and the weights: ``$DENSHARP_WEIGHTS_DIR`` if set, else the package's."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    return resources.files("densharp.ml").joinpath("weights")


def shipped_registry() -> dict[str, dict[str, Any]]:
    """Registry entries: name -> ``{"file", "sha256", "metadata"}`` (empty when none are installed)."""
    reg = weights_dir().joinpath("registry.json")
    if not reg.is_file():
        return {}
    try:
        data = json.loads(reg.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CheckpointError(f"{reg}: weights registry is damaged ({exc}); reinstall densharp") from exc
    models = data.get("models", {}) if isinstance(data, dict) else {}
    return dict(models) if isinstance(models, dict) else {}


def shipped_cards() -> dict[str, ModelCard]:
    """Cards of every shipped model, by name."""
    out = {}
    for name, entry in shipped_registry().items():
        path = weights_dir().joinpath(str(entry.get("file", "")))
        meta = dict(entry.get("metadata") or {})
        if "model_kwargs" not in meta:  # a short registry entry: the weights header holds the rest of the card
            meta = _header_metadata(path, name) | meta
        out[name] = card_from_metadata(name, str(path), entry.get("sha256"), meta)
    return out


def _header_metadata(path: Any, name: str) -> dict[str, str]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                head += fh.read(min(n, MAX_HEADER_BYTES))
    except OSError as exc:
        raise CheckpointError(f"{name}: weights file {path} cannot be read ({exc}); reinstall densharp") from exc
    return read_safetensors_metadata(head, name)


def shipped_card(name: str) -> ModelCard:
    """The card of shipped model ``name``.

    Raises
    ------
    InputError
        No such model (the message lists those installed).
    """
    cards = shipped_cards()
    if name not in cards:
        known = ", ".join(sorted(cards)) or "none are installed"
        raise InputError(f"unknown shipped model {name!r}; available: {known} (see 'densharp models')")
    return cards[name]


def read_safetensors_metadata(data: bytes, where: str = "weights file") -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file given as (at least its first) bytes."""
    if len(data) < 8:
        raise CheckpointError(f"{where}: truncated (no safetensors header); re-export or reinstall it")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise CheckpointError(f"{where}: damaged safetensors header (length {n}); re-export or reinstall it")
    try:
        header = json.loads(data[8 : 8 + n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{where}: damaged safetensors header ({exc}); re-export or reinstall it") from exc
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def file_card(path: str | os.PathLike[str]) -> ModelCard:
    """The card of a user's ``.safetensors`` weights file, from its header (the tensors are not read).

    Raises
    ------
    InputError
        The file does not exist (it is the user's path).
    CheckpointError
        Not densharp weights, or damaged metadata.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: weights file not found; check the path (or use --model NAME for shipped weights)")
    meta = _header_metadata(p, str(p))
    if meta.get("format") != WEIGHTS_FORMAT:
        raise CheckpointError(
            f"{p}: not a densharp weights file (format {meta.get('format')!r}); export it with densharp"
        )
    return card_from_metadata(str(p), str(p), None, meta)


def training_card(
    architecture: str,
    model_kwargs: Mapping[str, Any],
    modality: Modality,
    patch_zyx: tuple[int, int, int],
    resolution_range_A: tuple[float, float],
    conditioning: ConditioningRule,
    normalisation: NormKind,
) -> ModelCard:
    """The card of a model still in training: what its weights will say once exported.

    It lets training validate the model through the user's path (:func:`densharp.sharpening.sharpen_map`).
    """
    return ModelCard(
        name="model in training",
        path="",
        sha256=None,
        architecture=architecture,
        model_kwargs=dict(model_kwargs),
        modality=modality,
        patch_zyx=patch_zyx,
        resolution_range_A=resolution_range_A,
        conditioning=conditioning,
        normalisation=normalisation,
    )


def resolve_card(model: str | None, weights: str | os.PathLike[str] | None, default: str) -> ModelCard:
    """The card for ``--weights FILE``, else ``--model NAME``, else the shipped ``default``."""
    if weights is not None:
        return file_card(weights)
    return shipped_card(model or default)
