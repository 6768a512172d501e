"""Registry of sharpening methods to evaluate: ``name -> fn(input, d_input_A, half_maps=None, target=None)``.

Built in:

- ``identity``: the input unchanged (the baseline every method must beat);
- ``autob``: Guinier auto-B, low-passed at ``d_input_A`` (:func:`densharp.filters.sharpen.sharpen_autob`);
- ``fsc``: FSC-weighted half-map average with auto-B (needs half maps);
- ``global-filter``: the oracle best global isotropic linear filter, fitted with the target known
  (:mod:`densharp.filters.global_filter`); an upper bound for any global sharpening (needs the target);
- ``unet``, ``vae``, ``report-vae``: learned models ``unet-em``, ``vae-em``, ``report-vae-em`` through
  :func:`learned_method`, which imports :mod:`densharp.ml.sharpen` lazily; when the module or the model is
  missing the method raises :class:`MethodUnavailableError` and evaluations list it as skipped with the reason.

A method returns a :class:`~densharp.volume.DensityMap` on the input's grid, or ``(map, sd_map_or_None)`` when it
also estimates a per-voxel uncertainty. Tests register their own (fake) methods with :func:`register_method`.
"""

from __future__ import annotations

import importlib
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
    sd = None
    if isinstance(out, tuple):
        out, sd = out
    m.check_same_grid(out, f"method {name!r} output and its input")
    return MethodOutput(name, out, sd=sd, runtime_s=dt)


# ----------------------------------------------------------------------------------------------- built-in methods
def _identity(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> DensityMap:
    return m


def _autob(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> DensityMap:
    from densharp.filters.sharpen import sharpen_autob

    try:
        return sharpen_autob(m, max(d_input_A, m.nyquist_A)).map
    except InputError:
        # too coarse or too small a box for a Guinier fit: auto-B leaves the map as it is (recorded as identity)
        return m


def _fsc(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> DensityMap:
    from densharp.filters.sharpen import sharpen_half_maps

    h1, h2 = half_maps
    try:
        return sharpen_half_maps(h1, h2).map
    except InputError:
        return sharpen_half_maps(h1, h2, d_min_A=max(d_input_A, h1.nyquist_A), fit_low_A=max(10.0, 2 * d_input_A)).map


def _global_filter(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> DensityMap:
    from densharp.filters.global_filter import apply_global_filter

    return apply_global_filter(m, target)


_MODEL_CACHE: dict[str, tuple[Any, Any]] = {}


def _load_learned(model_name: str) -> tuple[Any, Any, Any]:
    try:
        # lazy: torch and the learned code are optional; import_module honours a module blocked in sys.modules
        ml_sharpen = importlib.import_module("densharp.ml.sharpen")
    except ImportError as exc:
        raise MethodUnavailableError(f"learned sharpening code not installed ({exc})") from None
    if model_name not in _MODEL_CACHE:
        try:
            _MODEL_CACHE[model_name] = ml_sharpen.load_model(model_name)
        except (DensharpError, ImportError, OSError, KeyError, ValueError, RuntimeError) as exc:
            raise MethodUnavailableError(f"model {model_name!r} not available ({exc})") from None
    model, meta = _MODEL_CACHE[model_name]
    return ml_sharpen, model, meta


def learned_method(model_name: str, samples: int = 1, device: str = "cpu") -> MethodFn:
    """Adapter: a method that sharpens with learned model ``model_name`` via ``densharp.ml.sharpen``.

    Returns ``(map, sd_or_None)``; raises :class:`MethodUnavailableError` when the code or the model is missing.
    """

    def fn(m: DensityMap, d_input_A: float, half_maps: Any = None, target: Any = None) -> Any:
        ml_sharpen, model, meta = _load_learned(model_name)
        res = ml_sharpen.sharpen_learned(m, model, meta, d_input_A, samples=samples, device=device)
        return res.map, getattr(res, "sd", None)

    return fn


def method_available(name: str) -> tuple[bool, str]:
    """``(True, "")`` if ``name`` can run here; for learned methods this loads the model once."""
    get_method(name)
    model = LEARNED_MODELS.get(name)
    if model is None:
        return True, ""
    try:
        _load_learned(model)
    except MethodUnavailableError as exc:
        return False, str(exc)
    return True, ""


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
register_method("unet", learned_method("unet-em"), description="learned U-Net (unet-em)")
register_method("vae", learned_method("vae-em", samples=8), description="learned VAE, mean of 8 samples (vae-em)")
register_method(
    "report-vae", learned_method("report-vae-em"), description="the founding report VAE, latent mean (report-vae-em)"
)
