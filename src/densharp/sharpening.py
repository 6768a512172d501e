"""Sharpen one input — a map, two half maps or MTZ map coefficients — as users, benchmarks and training run it.

The use case in two steps, both pure (no file access):

- :func:`plan_sharpen` decides, from the inputs (read and checked) and the :class:`SharpenOptions`, which method
  runs, with which model card, at which resolution (and where that came from), whether the input lies inside the
  model's training domain, and if not what it falls back to and why. It loads no weights.
- :func:`run_sharpen` carries the plan out: the sharpened map on the input's exact grid, the per-voxel SD map
  (VAE samples), map coefficients (MTZ input) and a JSON-ready record of what was done.

``densharp sharpen`` parses, reads, calls these two and writes; ``densharp evaluate`` and the benchmarks call
:func:`sharpen_map` (the same two steps) for every method they score, so every table measures what users run.
"""

from __future__ import annotations

import enum
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from densharp.errors import InputError
from densharp.modality import Modality
from densharp.volume import DensityMap

if TYPE_CHECKING:  # pragma: no cover
    import gemmi

    from densharp.ml.registry import ModelCard
    from densharp.ml.sharpen import LoadedModel

LEARNED = ("unet", "vae", "report-vae")
CLASSICAL = ("autob", "bfactor", "fsc")
#: the method a run reports when it returns its input as it is (the last do-no-harm fallback)
UNCHANGED = "unchanged"
#: VAE samples: 1 (decode at the prior mean) or an even number of at least this (antithetic pairs; SD error ~1/√N)
MIN_SAMPLES = 8
#: largest |B| (Å²) accepted for the bfactor method
MAX_ABS_B_A2 = 1000.0


class InputKind(str, enum.Enum):
    """What is being sharpened."""

    MAP = "map"
    HALF_MAPS = "half-maps"
    MTZ = "mtz"


@dataclass(frozen=True)
class SharpenInputs:
    """The input, read and checked by the caller.

    Exactly one of ``map``, ``half_maps`` or ``mtz`` (with its ``mtz_columns``) is set, matching ``kind``.
    ``mask`` is an optional soft mask on the map's grid. ``names`` label the inputs in messages.
    """

    kind: InputKind
    map: DensityMap | None = None
    half_maps: tuple[DensityMap, DensityMap] | None = None
    mtz: gemmi.Mtz | None = None
    mtz_columns: tuple[str, str] | None = None
    mask: np.ndarray | None = None
    mask_desc: str = "none"
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        given = {
            InputKind.MAP: self.map is not None,
            InputKind.HALF_MAPS: self.half_maps is not None,
            InputKind.MTZ: self.mtz is not None and self.mtz_columns is not None,
        }
        if not given[self.kind] or sum(given.values()) != 1:
            raise InputError(f"sharpen inputs: give exactly the {self.kind.value} input")
        if self.mask is not None and self.kind is InputKind.MTZ:
            raise InputError("a mask is for map input; MTZ input is sharpened over its whole unit cell")

    @property
    def modality(self) -> Modality:
        """X-ray for map coefficients, cryo-EM otherwise."""
        return Modality.XRAY if self.kind is InputKind.MTZ else Modality.EM

    @property
    def label(self) -> str:
        """Name of the input for messages."""
        return " + ".join(self.names) if self.names else self.kind.value

    @classmethod
    def of_map(cls, m: DensityMap, mask: np.ndarray | None = None, name: str = "map") -> SharpenInputs:
        """A single map (with an optional mask on its grid)."""
        return cls(InputKind.MAP, map=m, mask=mask, mask_desc="given" if mask is not None else "none", names=(name,))


@dataclass(frozen=True)
class SharpenOptions:
    """How to sharpen (the flags of ``densharp sharpen``, as library parameters).

    Parameters
    ----------
    method
        ``unet``, ``vae``, ``report-vae`` (learned), ``autob``, ``bfactor``, ``fsc`` (classical) or ``None``
        (default: the shipped learned model for the modality when installed and the input is in its domain, else
        ``fsc`` with half maps, else ``autob``).
    model, weights
        Shipped model name, or a weights file (learned methods; either implies its architecture).
    d_input_A
        Resolution of the input (Å); default from the half-map FSC or the MTZ's high-resolution limit.
    d_target_A
        Target resolution of a learned model (Å); default from the model's rule.
    b_factor_A2
        ``bfactor`` method: the B applied, ``exp(-B s²/4)`` (negative sharpens).
    fit_low_A
        Low-resolution end of the Guinier fit (Å).
    samples
        VAE draws: 1 (the prior mean) or an even number >= 8 (also the per-voxel SD).
    device, precision, batch_size, overlap
        Learned inference settings.
    force
        Run a learned model outside its training domain instead of falling back.
    seed
        Seed of the VAE draws.
    mtz_out
        Also return map coefficients (MTZ input only).
    progress
        Show a progress bar for learned tiling (on a TTY).
    """

    method: str | None = None
    model: str | None = None
    weights: str | None = None
    d_input_A: float | None = None
    d_target_A: float | None = None
    b_factor_A2: float | None = None
    fit_low_A: float = 10.0
    samples: int = 1
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 4
    overlap: float = 0.25
    force: bool = False
    seed: int = 0
    mtz_out: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in (*LEARNED, *CLASSICAL):
            raise InputError(f"`method` {self.method!r} is unknown; choose one of {', '.join((*LEARNED, *CLASSICAL))}")
        if self.model is not None and self.weights is not None:
            raise InputError("give `model` (a shipped name) or `weights` (a file), not both")
        if self.method in CLASSICAL and (self.model or self.weights):
            raise InputError(f"`model`/`weights` are for learned methods, not `method` {self.method!r}")
        for name in ("d_input_A", "d_target_A"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and 0 < v <= 100.0):
                raise InputError(f"`{name}` must be a resolution between 0 and 100 Å, got {v}")
        if not (np.isfinite(self.fit_low_A) and 0 < self.fit_low_A <= 100.0):
            raise InputError(f"`fit_low_A` must be between 0 and 100 Å, got {self.fit_low_A}")
        if self.b_factor_A2 is not None and not (
            np.isfinite(self.b_factor_A2) and abs(self.b_factor_A2) <= MAX_ABS_B_A2
        ):
            raise InputError(f"`b_factor_A2` must be a finite B within ±{MAX_ABS_B_A2:g} Å², got {self.b_factor_A2}")
        if self.samples != 1 and (self.samples < MIN_SAMPLES or self.samples % 2):
            raise InputError(
                f"`samples` must be 1 or an even number >= {MIN_SAMPLES} (draws come in antithetic pairs), "
                f"got {self.samples}"
            )
        if self.samples > 1 and self.method not in (None, "vae"):
            raise InputError(f"`samples` > 1 needs a VAE (`method` vae), not `method` {self.method!r}")
        if self.batch_size < 1 or self.batch_size > 4096:
            raise InputError(f"`batch_size` must be 1..4096, got {self.batch_size}")
        from densharp.ml.tiling import MAX_OVERLAP

        if not 0.0 <= self.overlap <= MAX_OVERLAP:
            raise InputError(f"`overlap` must be in [0, {MAX_OVERLAP}], got {self.overlap}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"`seed` must be in [0, 2^63), got {self.seed}")

    def record(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: (str(v) if v is not None and k == "weights" else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SharpenPlan:
    """What :func:`run_sharpen` will do, decided before any heavy computation.

    ``method`` is what runs; ``choice`` says how it was chosen; ``card`` is the model card of a learned method;
    ``d_input_A`` and ``resolution_source`` the input resolution and where it came from; ``domain`` the model's
    domain verdict (``inside``, ``reasons``, ``forced``); ``fallback`` (``from``, ``to``, ``reasons``) when a
    learned method gave way to a classical one; ``grid_voxel_A`` the spacing MTZ coefficients are gridded at.
    """

    method: str
    choice: str
    options: SharpenOptions
    d_input_A: float | None
    resolution_source: str
    card: ModelCard | None = None
    domain: dict[str, Any] | None = None
    fallback: dict[str, Any] | None = None
    grid_voxel_A: float | None = None
    notes: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """JSON-ready summary."""
        out: dict[str, Any] = {
            "method": self.method,
            "method_choice": {"requested": self.options.method, "how": self.choice},
            "resolution_A": None if self.d_input_A is None else round(float(self.d_input_A), 4),
            "resolution_source": self.resolution_source,
        }
        if self.card is not None:
            out["model"] = self.card.record()
            out["domain"] = self.domain
        if self.fallback is not None:
            out["fallback"] = self.fallback
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class SharpenOutcome:
    """The result of :func:`run_sharpen`: the map (input grid), SD map, MTZ coefficients and the record."""

    map: DensityMap
    sd: DensityMap | None
    mtz: gemmi.Mtz | None
    record: dict[str, Any] = field(default_factory=dict)


def learned_unavailable() -> str | None:
    """Why learned models cannot run here (``None`` when torch and safetensors are installed)."""
    from densharp.optional import ml_available

    ok, why = ml_available()
    return None if ok else why


# ----------------------------------------------------------------------------------------------- planning
def _resolution(inputs: SharpenInputs, options: SharpenOptions) -> tuple[float | None, str]:
    if options.d_input_A is not None:
        return float(options.d_input_A), "given"
    if inputs.kind is InputKind.HALF_MAPS:
        from densharp.filters.fsc_weight import estimate_resolution

        assert inputs.half_maps is not None
        h1, h2 = inputs.half_maps
        d, _ = estimate_resolution(h1, h2, inputs.mask)
        return max(float(d), h1.nyquist_A), "half-map FSC 0.143"
    if inputs.kind is InputKind.MTZ:
        assert inputs.mtz is not None
        return float(inputs.mtz.resolution_high()), "MTZ high-resolution limit"
    return None, "not given"


def _working_grid(inputs: SharpenInputs) -> DensityMap | None:
    if inputs.kind is InputKind.MAP:
        return inputs.map
    if inputs.kind is InputKind.HALF_MAPS:
        assert inputs.half_maps is not None
        return inputs.half_maps[0]
    return None


def plan_sharpen(inputs: SharpenInputs, options: SharpenOptions) -> SharpenPlan:
    """Decide method, model, resolution and domain verdict (see the module docstring); loads no weights.

    Raises
    ------
    InputError
        Options that do not fit the input (``fsc`` without half maps, ``bfactor`` without a B, a resolution finer
        than the map's Nyquist, a learned method without a resolution, ...), or an unknown model.
    """
    from densharp.filters.sharpen import check_resolution
    from densharp.ml.registry import DEFAULT_MODELS, resolve_card, shipped_registry

    method = options.method
    if method == "fsc" and inputs.kind is not InputKind.HALF_MAPS:
        raise InputError("`method` fsc needs two half maps")
    if method == "bfactor" and options.b_factor_A2 is None:
        raise InputError("`method` bfactor needs `b_factor_A2` (the B applied, Å²; negative sharpens)")
    if options.mtz_out and inputs.kind is not InputKind.MTZ:
        raise InputError("map coefficients out (`mtz_out`) need MTZ input")
    d, source = _resolution(inputs, options)
    grid = _working_grid(inputs)
    if d is not None and grid is not None:
        check_resolution(d, grid, "`d_input_A`")
    modality = inputs.modality
    classical_default = "fsc" if inputs.kind is InputKind.HALF_MAPS else "autob"

    learned = method in LEARNED or options.model is not None or options.weights is not None
    choice = f"requested {method}" if method else ""
    notes: list[str] = []
    if method is None and not learned:
        why = learned_unavailable()
        if why is not None:
            choice = f"learned models unavailable ({why}): classical method"
        elif DEFAULT_MODELS.get((modality, "unet")) in shipped_registry():
            learned, method = True, "unet"
            choice = f"default: shipped {DEFAULT_MODELS[(modality, 'unet')]} for {modality.value} input"
        else:
            choice = f"no shipped model for {modality.value} input: classical method"
    elif options.model or options.weights:
        choice = choice or f"model {options.model or options.weights}"
    if learned:
        why = learned_unavailable()
        if why is not None:
            raise InputError(f"learned sharpening needs {why}; or choose `method` autob, fsc or bfactor")
        arch = method or "unet"
        default = DEFAULT_MODELS.get((modality, arch)) or DEFAULT_MODELS[(Modality.EM, arch)]
        card = resolve_card(options.model, options.weights, default)
        if method is not None and method in LEARNED and card.architecture != method:
            raise InputError(
                f"`method` {method} but {card.name} is a {card.architecture!r} model; use `method` {card.architecture}"
            )
        if options.samples > 1 and card.architecture != "vae":
            raise InputError(f"`samples` {options.samples} needs a VAE model; {card.name} is a {card.architecture!r}")
        if d is None:
            raise InputError("a learned model needs the input's resolution (`d_input_A`, or half maps)")
        reasons = card.domain_reasons(modality, d)
        domain = {"inside": not reasons, "reasons": reasons, "forced": bool(reasons and options.force)}
        falls_back = bool(reasons) and not options.force
        runs = classical_default if falls_back else card.architecture
        if falls_back:
            notes.append(f"input outside {card.name}'s training domain ({'; '.join(reasons)}); falling back to "
                         f"{classical_default} (`force` runs the model anyway)")  # fmt: skip
        elif reasons:
            notes.append(f"input outside the model's domain ({'; '.join(reasons)}); running it anyway (`force`)")
        return SharpenPlan(
            method=runs,
            choice=choice,
            options=options,
            d_input_A=d,
            resolution_source=source,
            card=card,
            domain=domain,
            fallback={"from": card.architecture, "to": runs, "reasons": reasons} if falls_back else None,
            grid_voxel_A=_mtz_grid_voxel(inputs, runs, d, card),
            notes=tuple(notes),
        )
    method = method or classical_default
    if method in ("autob", "fsc") and d is None and inputs.kind is InputKind.MAP:
        raise InputError("autob needs the map's resolution (`d_input_A`), or give half maps")
    return SharpenPlan(
        method=method,
        choice=choice or f"default: {method}",
        options=options,
        d_input_A=d,
        resolution_source=source,
        grid_voxel_A=_mtz_grid_voxel(inputs, method, d, None),
        notes=tuple(notes),
    )


def _mtz_grid_voxel(inputs: SharpenInputs, method: str, d: float | None, card: ModelCard | None) -> float | None:
    """Spacing MTZ coefficients are gridded at: the model's rule for a learned method, else d/3."""
    if inputs.kind is not InputKind.MTZ or d is None:
        return None
    if method in LEARNED and card is not None:
        return card.conditioning.grid_voxel_A(d)
    return d / 3.0


# ----------------------------------------------------------------------------------------------- running
def run_sharpen(plan: SharpenPlan, inputs: SharpenInputs, loaded: LoadedModel | None = None) -> SharpenOutcome:
    """Carry out ``plan`` on ``inputs``.

    ``loaded`` passes an in-memory model (training validation) instead of loading the plan's card.

    Raises
    ------
    InputError
        The computation finds the input unusable (named by ``inputs.names``).
    CheckpointError
        The model's weights cannot be loaded.
    """
    t0 = time.perf_counter()
    opts = plan.options
    mtz_info: dict[str, Any] | None = None
    if inputs.kind is InputKind.MTZ:
        from densharp.io.mtz import mtz_map

        assert inputs.mtz is not None and inputs.mtz_columns is not None and plan.grid_voxel_A is not None
        m = mtz_map(inputs.mtz, *inputs.mtz_columns, plan.grid_voxel_A)
        sg = inputs.mtz.spacegroup
        mtz_info = {
            "columns": list(inputs.mtz_columns),
            "d_min_mtz_A": round(float(inputs.mtz.resolution_high()), 4),
            "spacegroup": sg.hm if sg is not None else "P 1",
            "grid_xyz": list(m.shape_xyz),
            "grid_voxel_A": round(float(plan.grid_voxel_A), 4),
            "expanded_to_p1": True,
        }
    elif inputs.kind is InputKind.HALF_MAPS:
        assert inputs.half_maps is not None
        h1, h2 = inputs.half_maps
        m = h1.with_data(0.5 * (h1.data_zyx + h2.data_zyx))
    else:
        assert inputs.map is not None
        m = inputs.map
    sd = coeffs = None
    try:
        if plan.method in LEARNED:
            out, sd, result, coeffs = _learned(plan, inputs, m, loaded)
            if inputs.kind is not InputKind.MTZ:
                plan, out, sd, result = _do_no_harm(plan, inputs, m, out, sd, result)
        else:
            out, result = _classical(plan, inputs, m)
    except InputError as exc:
        raise InputError(f"{inputs.label}: {exc}") from exc
    if not np.isfinite(out.data_zyx).all():
        raise InputError(f"{inputs.label}: sharpening produced non-finite values; check the input and parameters")
    if opts.mtz_out and coeffs is None:
        from densharp.io.mtz import map_to_mtz

        assert inputs.mtz is not None and plan.d_input_A is not None
        coeffs = map_to_mtz(out, float(plan.d_input_A), inputs.mtz.spacegroup)
    record: dict[str, Any] = {
        **plan.record(),
        "mask": inputs.mask_desc,
        "geometry": out.geometry_dict(),
        "parameters": opts.record(),
        "result": result,
        "runtime_s": round(time.perf_counter() - t0, 3),
    }
    if "weights_sha256" in result and "model" in record:
        record["model"]["sha256"] = result["weights_sha256"]  # what was loaded (a user's file has no pinned one)
    if mtz_info is not None:
        record["mtz"] = mtz_info
    if sd is not None:
        record["sd_map"] = {
            "meaning": f"per-voxel standard deviation across {opts.samples} VAE samples, in the output map's units "
            "(same grid as the output)"
        }
    return SharpenOutcome(map=out, sd=sd, mtz=coeffs if opts.mtz_out else None, record=record)


#: learned cryo-EM outputs: shells coarser than KEEP·d are the input's (amplitude-matched inside the molecule),
#: blended out by FREE·d. Measured (docs/models.md): on real maps 1.5/1.2 beats 2/1.5 (HCN4 0.780 vs 0.772, F-actin
#: 0.693 vs 0.687, EMD-2566 0.756 vs 0.757); on 24 test-split and 27 perturbed boxes it costs 0.001-0.002
KEEP_COARSER_THAN_D = 1.5
FREE_FINER_THAN_D = 1.2
#: ... and the output must still agree with the input up to CHECK·d (inside the band the output owns alone,
#: finer than FREE·d): FSC >= CHECK_MIN_FSC in every shell there (a
#: perfect denoiser of a map whose half-map FSC is 0.143-0.5 there reaches 0.5-0.82; an unrelated output ~0)
CHECK_TO_D = 1.1
CHECK_MIN_FSC = 0.3


def _do_no_harm(
    plan: SharpenPlan,
    inputs: SharpenInputs,
    m: DensityMap,
    out: DensityMap,
    sd: DensityMap | None,
    result: dict[str, Any],
) -> tuple[SharpenPlan, DensityMap, DensityMap | None, dict[str, Any]]:
    """Do no harm: a learned output keeps the input's reliable shells and must agree with it beyond them.

    1. Shells coarser than ``1.5·d`` are taken from the input, scaled by the output's per-shell amplitude ratio
       inside the molecule (the given mask, else the input's automatic molecule mask)
       (:func:`densharp.filters.projection.keep_low_resolution`; blended out by ``1.2·d``): what the input measured
       best (envelopes, micelles, unmodelled parts) is never rewritten, only reweighted.
    2. FSC between the output and the input inside the molecule (the same mask) must reach 0.3 in every shell
       coarser than ``1.1·d``. An output that fails is replaced by the classical method unless ``force`` (by the
       input itself when auto-B cannot run or its fit is capped); either way the verdict is recorded, with the
       whole-box FSC beside it.
    """
    from dataclasses import replace

    from densharp.filters.masks import auto_molecule_mask
    from densharp.filters.projection import keep_low_resolution
    from densharp.metrics.consistency import consistency_check

    assert plan.d_input_A is not None
    d = float(plan.d_input_A)
    gain_mask = inputs.mask if inputs.mask is not None else auto_molecule_mask(m)
    mask_desc = "the given mask" if inputs.mask is not None else "automatic molecule mask of the input"
    out = keep_low_resolution(out, m, KEEP_COARSER_THAN_D * d, FREE_FINER_THAN_D * d, gain_mask_zyx=gain_mask)
    result["kept_from_input"] = {
        "coarser_than_A": round(KEEP_COARSER_THAN_D * d, 3),
        "blended_to_A": round(FREE_FINER_THAN_D * d, 3),
        "rule": "input coefficients scaled by the output's per-shell amplitude ratio inside the molecule (0.5-2)",
        "gain_mask": mask_desc,
    }
    try:
        # judged inside the molecule (the mask the gains use): what the input measured there is what must survive.
        # Over the whole box the solvent's noise dominates the shells near d; a real low-passed 6.6 Å map whose
        # output agrees with it inside the molecule (FSC 0.51-0.77 at 7.6-8.3 Å) scored -0.22 there
        check = consistency_check(out, m, CHECK_TO_D * d, threshold=CHECK_MIN_FSC, mask=gain_mask)
        whole = consistency_check(out, m, CHECK_TO_D * d, threshold=CHECK_MIN_FSC)
    except InputError as exc:  # too small a box to hold a whole shell in the band: nothing to judge
        result["consistency"] = {"skipped": str(exc)}
        return plan, out, sd, result
    result["consistency"] = check.to_dict() | {
        "mask": mask_desc,
        "whole_box": {k: v for k, v in whole.to_dict().items() if k in ("fsc_min", "fsc_mean", "worst_shell_A")},
    }
    if check.is_consistent or plan.options.force or plan.choice == "model in training":
        return plan, out, sd, result
    to = "fsc" if inputs.kind is InputKind.HALF_MAPS else "autob"
    why = (f"the learned output disagrees with the input where the input is reliable (FSC {check.fsc_min:.3f} "
           f"< {check.threshold:g} at {check.worst_shell_A:.1f} Å, shells coarser than {check.d_band_A:.1f} Å)")  # fmt: skip
    tried = plan.method
    plan = replace(
        plan,
        method=to,
        fallback={"from": tried, "to": to, "reasons": [why]},
        notes=(*plan.notes, f"{why}; falling back to {to} (`force` keeps the learned output)"),
    )
    try:
        out2, classical = _classical(plan, inputs, m)
        untrusted = "its fitted B was capped" if classical.get("b_capped") else None
    except InputError as exc:  # e.g. too small a box for a Guinier fit: the fallback must not fail the run
        out2, classical, untrusted = m, {}, f"it cannot run here ({exc})"
    if untrusted is not None:
        # a capped auto-B boosts d by the full 100x: on a map whose spectrum is a filter's, not a B-factor's (a real
        # low-passed 6.6 Å map: masked RSCC 0.628 -> 0.449), so the fallback of the fallback is the input itself
        plan = replace(
            plan,
            method=UNCHANGED,
            fallback={"from": tried, "to": UNCHANGED, "reasons": [why, f"{to} not trusted: {untrusted}"]},
            notes=(*plan.notes, f"{to} is not trusted here ({untrusted}): the input is returned unchanged"),
        )
        out2, classical = m, {"method": UNCHANGED, "classical_tried": classical or {"method": to, "error": untrusted}}
    return plan, out2, None, {"method_tried": result, **classical, "consistency_of_learned": check.to_dict()}


def _classical(plan: SharpenPlan, inputs: SharpenInputs, m: DensityMap) -> tuple[DensityMap, dict[str, Any]]:
    from densharp.filters.sharpen import sharpen_autob, sharpen_fixed_b, sharpen_half_maps

    opts = plan.options
    if plan.method == "fsc":
        assert inputs.half_maps is not None
        res = sharpen_half_maps(*inputs.half_maps, mask=inputs.mask, d_min_A=plan.d_input_A, fit_low_A=opts.fit_low_A)
    elif plan.method == "autob":
        assert plan.d_input_A is not None
        res = sharpen_autob(m, float(plan.d_input_A), mask=inputs.mask, fit_low_A=opts.fit_low_A)
    else:
        assert opts.b_factor_A2 is not None
        res = sharpen_fixed_b(m, -float(opts.b_factor_A2), plan.d_input_A)
    return res.map, res.to_dict()


def _learned(
    plan: SharpenPlan, inputs: SharpenInputs, m: DensityMap, loaded: LoadedModel | None
) -> tuple[DensityMap, DensityMap | None, dict[str, Any], gemmi.Mtz | None]:
    from densharp.ml.sharpen import load_model, sharpen_learned

    assert plan.card is not None and plan.d_input_A is not None
    opts = plan.options
    model = loaded if loaded is not None else load_model(plan.card)
    r = sharpen_learned(
        m,
        model,
        float(plan.d_input_A),
        d_target_A=opts.d_target_A,
        mask_zyx=inputs.mask,
        samples=opts.samples,
        device=opts.device,
        precision=opts.precision,
        overlap=opts.overlap,
        batch_size=opts.batch_size,
        periodic=inputs.kind is InputKind.MTZ,
        progress=opts.progress or None,
        seed=opts.seed,
    )
    result: dict[str, Any] = {"learned": r.meta, "weights_sha256": model.sha256}
    if inputs.kind is InputKind.HALF_MAPS:
        result["input"] = "mean of the two half maps (each half alone carries noise the models never saw)"
    if inputs.kind is not InputKind.MTZ:
        return r.map, r.sd, result, None
    # crystallographic data: the measured reflections stay as they are; the model adds only what lies beyond them
    from densharp.reflections import DEFAULT_GAIN, coefficients_map, extend_coefficients

    assert inputs.mtz is not None and inputs.mtz_columns is not None
    gain = plan.card.extrapolation_gain or DEFAULT_GAIN
    d_t = float(r.meta["d_target_A"])
    if d_t >= float(plan.d_input_A) - 1e-6:
        raise InputError(f"target resolution {d_t:g} Å is not finer than the data's; nothing to extrapolate")
    coeffs, info = extend_coefficients(inputs.mtz, inputs.mtz_columns, r.map, float(plan.d_input_A), d_t, gain)
    result["extrapolation"] = info | {"gain_source": "model card" if plan.card.extrapolation_gain else "default"}
    return coefficients_map(coeffs, m), None, result, coeffs


def sharpen_map(
    m: DensityMap,
    d_input_A: float | None,
    method: str | None = None,
    half_maps: tuple[DensityMap, DensityMap] | None = None,
    mask: np.ndarray | None = None,
    loaded: LoadedModel | None = None,
    **options: Any,
) -> SharpenOutcome:
    """Plan and run one sharpening of a map (or of ``half_maps``, whose mean ``m`` is), as ``densharp sharpen`` does.

    ``options`` are further :class:`SharpenOptions` fields. With ``loaded`` (an in-memory model), ``method`` must be
    its architecture and the model's card is used.
    """
    if half_maps is not None:
        inputs = SharpenInputs(InputKind.HALF_MAPS, half_maps=half_maps, mask=mask, names=("half maps",))
    else:
        inputs = SharpenInputs.of_map(m, mask)
    opts = SharpenOptions(method=method, d_input_A=d_input_A, **options)
    plan = plan_for_model(inputs, opts, loaded.card) if loaded is not None else plan_sharpen(inputs, opts)
    return run_sharpen(plan, inputs, loaded)


def plan_for_model(inputs: SharpenInputs, options: SharpenOptions, card: ModelCard) -> SharpenPlan:
    """A plan that runs ``card``'s model with no registry lookup and no fallback.

    For validating a model in training, whose weights are not shipped yet.
    """
    d, source = _resolution(inputs, options)
    if d is None:
        raise InputError("a learned model needs the input's resolution (`d_input_A`, or half maps)")
    reasons = card.domain_reasons(inputs.modality, d)
    return SharpenPlan(
        method=card.architecture,
        choice="model in training",
        options=options,
        d_input_A=d,
        resolution_source=source,
        card=card,
        domain={"inside": not reasons, "reasons": reasons, "forced": bool(reasons)},
        grid_voxel_A=_mtz_grid_voxel(inputs, card.architecture, d, card),
    )


def sharpen_mtz(
    mtz: gemmi.Mtz,
    columns: tuple[str, str],
    d_input_A: float | None = None,
    method: str | None = None,
    loaded: LoadedModel | None = None,
    **options: Any,
) -> SharpenOutcome:
    """Plan and run the sharpening of MTZ map coefficients (columns ``F, PHI``), as ``densharp sharpen`` does."""
    inputs = SharpenInputs(InputKind.MTZ, mtz=mtz, mtz_columns=columns, names=("mtz",))
    opts = SharpenOptions(method=method, d_input_A=d_input_A, **options)
    plan = plan_for_model(inputs, opts, loaded.card) if loaded is not None else plan_sharpen(inputs, opts)
    return run_sharpen(plan, inputs, loaded)
