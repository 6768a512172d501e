"""Registry of sharpening methods to evaluate: ``name -> fn(input, d_input_A, half_maps=None, target=None)``.

Built in:

- ``identity``: the input unchanged (the baseline every method must beat);
- ``autob``: Guinier auto-B, low-passed at ``d_input_A`` (:func:`densharp.filters.sharpen.sharpen_autob`);
- ``fsc``: FSC-weighted half-map average with auto-B (needs half maps);
- ``global-filter``: the oracle best global isotropic linear filter, fitted with the target known
  (:mod:`densharp.filters.global_filter`); an upper bound for any global sharpening (needs the target);
- ``default``, ``unet``, ``vae``, ``report-vae``: ``densharp sharpen`` by default, or with shipped models
  ``unet-em``, ``vae-em`` (mean of 8 samples), ``report-vae-em`` (:func:`learned_method`); when torch or the model
  is missing the method raises :class:`MethodUnavailableError` and evaluations list it as skipped with the reason.

``autob``, ``fsc`` and the learned methods run :func:`densharp.sharpening.sharpen_map`, the same plan-and-run as
``densharp sharpen``, so every table measures what users run (including a learned model's fallback outside its
domain, noted in the output). A method returns a :class:`~densharp.volume.DensityMap` on the input's grid, or
``(map, sd_or_None[, notes])``. Tests register their own (fake) methods with :func:`register_method`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from densharp.errors import DensharpError, InputError
from densharp.volume import DensityMap

MethodFn = Callable[..., Any]


class MethodUnavailableError(DensharpError):
    """The method cannot run here (learned code or model missing, or a needed input absent); ``str`` is why."""


@dataclass(frozen=True)
class Method:
    """A registered method and what it needs."""

    name: str
    fn: MethodFn
    needs_half_maps: bool = False
    needs_target: bool = False
    description: str = ""


@dataclass
class MethodOutput:
    """What running one method on one input gave: a map (or the reason it was skipped) and the runtime."""

    name: str
    map: DensityMap | None
    sd: DensityMap | None = None
    skipped: str | None = None
    runtime_s: float = 0.0
    notes: list[str] = field(default_factory=list)


METHODS: dict[str, Method] = {}


def register_method(
    name: str,
    fn: MethodFn,
    *,
    needs_half_maps: bool = False,
    needs_target: bool = False,
    description: str = "",
    replace: bool = False,
) -> Method:
    """Add ``fn`` to the registry under ``name`` (refuses to replace an existing name unless ``replace``)."""
    if name in METHODS and not replace:
        raise ValueError(f"method {name!r} is already registered")
    meth = Method(name, fn, needs_half_maps, needs_target, description)
    METHODS[name] = meth
    return meth


def unregister_method(name: str) -> None:
    """Remove ``name`` from the registry (tests)."""
    METHODS.pop(name, None)


def get_method(name: str) -> Method:
    """The registered method ``name``; :class:`InputError` listing the known names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None


def parse_methods(text: str) -> list[str]:
    """``"identity,autob"`` → ``["identity", "autob"]``, each checked against the registry."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    for n in names:
        get_method(n)
    return names


def run_method(
    name: str,
    m: DensityMap,
    d_input_A: float,
    half_maps: tuple[DensityMap, DensityMap] | None = None,
    target: DensityMap | None = None,
) -> MethodOutput:
    """Run method ``name``; a missing input or an unavailable model gives a skipped :class:`MethodOutput`."""
    meth = get_method(name)
    if meth.needs_half_maps and half_maps is None:
        return MethodOutput(name, None, skipped="needs half maps")
    if meth.needs_target and target is None:
        return MethodOutput(name, None, skipped="needs the target")
    t0 = time.perf_counter()
    try:
        out = meth.fn(m, d_input_A, half_maps=half_maps, target=target)
    except MethodUnavailableError as exc:
        return MethodOutput(name, None, skipped=str(exc))
    dt = time.perf_counter() - t0
    sd, notes = None, []
    if isinstance(out, tuple):
        out, sd, *rest = out
        notes = list(rest[0]) if rest else []
    m.check_same_grid(out, f"method {name!r} output and its input")
    return MethodOutput(name, out, sd=sd, runtime_s=dt, notes=notes)


# ----------------------------------------------------------------------------------------------- built-in methods
def _identity(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> DensityMap:
    return m


def _sharpen(m: DensityMap, d_input_A: float | None, **kw: Any) -> Any:
    """The user's path (:func:`densharp.sharpening.sharpen_map`); notes (e.g. a domain fallback) travel along."""
    from densharp.sharpening import sharpen_map

    out = sharpen_map(m, d_input_A, **kw)
    rec = out.record
    notes = (
        [f"fell back to {rec['fallback']['to']}: {'; '.join(rec['fallback']['reasons'])}"] if "fallback" in rec else []
    )
    return out.map, out.sd, notes


def _autob(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> Any:
    try:
        return _sharpen(m, max(d_input_A, m.nyquist_A), method="autob")
    except InputError as exc:
        # too coarse or too small a box for a Guinier fit: auto-B leaves the map as it is (recorded as identity)
        return m, None, [f"auto-B not possible ({exc}); input kept"]


def _fsc(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> Any:
    try:
        return _sharpen(m, None, method="fsc", half_maps=half_maps)
    except InputError:
        d = max(d_input_A, half_maps[0].nyquist_A)
        return _sharpen(m, d, method="fsc", half_maps=half_maps, fit_low_A=max(10.0, 2 * d))


def _global_filter(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> DensityMap:
    from densharp.filters.global_filter import apply_global_filter

    return apply_global_filter(m, target)


def learned_method(model_name: str | None, samples: int = 1) -> MethodFn:
    """A method that runs ``densharp sharpen`` with shipped model ``model_name`` (``None``: the default method).

    Returns ``(map, sd_or_None, notes)``; raises :class:`MethodUnavailableError` when torch or the model is
    missing. Outside the model's domain it falls back as ``densharp sharpen`` does (and says so in the notes).
    """

    def fn(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> Any:
        if model_name is not None:
            ok, why = _learned_available(model_name)
            if not ok:
                raise MethodUnavailableError(why)
        kw: dict[str, Any] = {"samples": samples}
        if model_name is not None:
            kw["model"] = model_name
        return _sharpen(m, d_input_A, half_maps=half_maps if model_name is None else None, **kw)

    return fn


def _learned_available(model_name: str) -> tuple[bool, str]:
    from densharp.ml.registry import shipped_registry
    from densharp.sharpening import learned_unavailable

    why = learned_unavailable()
    if why is not None:
        return False, f"learned sharpening unavailable: {why}"
    if model_name not in shipped_registry():
        return False, f"model {model_name!r} not installed"
    return True, ""


def method_available(name: str) -> tuple[bool, str]:
    """``(True, "")`` if ``name`` can run here."""
    get_method(name)
    model = LEARNED_MODELS.get(name)
    return (True, "") if model is None else _learned_available(model)


#: method name -> shipped model name
LEARNED_MODELS: dict[str, str] = {"unet": "unet-em", "vae": "vae-em", "report-vae": "report-vae-em"}
#: the classical methods (always available)
CLASSICAL: tuple[str, ...] = ("identity", "autob", "fsc", "global-filter")

register_method("identity", _identity, description="the input unchanged")
register_method("autob", _autob, description="Guinier auto-B sharpening, low-pass at the input resolution")
register_method("fsc", _fsc, needs_half_maps=True, description="FSC-weighted half-map average + auto-B")
register_method(
    "global-filter", _global_filter, needs_target=True, description="oracle best global isotropic filter (knows target)"
)
register_method("default", learned_method(None), description="what 'densharp sharpen' does by default")
register_method("unet", learned_method("unet-em"), description="learned U-Net (unet-em)")
register_method("vae", learned_method("vae-em", samples=8), description="learned VAE, mean of 8 samples (vae-em)")
register_method(
    "report-vae", learned_method("report-vae-em"), description="the founding report VAE, latent mean (report-vae-em)"
)
