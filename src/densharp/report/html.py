"""One self-contained HTML report (base64 PNGs) drawn from a run JSON alone, with the PNGs written beside it.

Sections, as the record allows: summary table per bin; RSCC-by-bin bars; per case the FSC curves of the input
(identity), the baselines and the outputs against the target (top axis in Å) and the model-free half-map FSC;
three central sections of input / outputs (one shared colour scale) / target (own scale) / uncertainty maps;
the hallucination table and bars; the training loss and validation curves when a training-run folder is given.
jinja2 renders the page when installed, else plain string templating.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
from pathlib import Path
from typing import Any

from densharp.report import plots

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:auto}pre{background:#f4f4f4;padding:8px;font-size:12px}
img{max-width:100%}h2{border-bottom:1px solid #ccc}</style></head><body>
<h1>{{ title }}</h1>
{% for s in sections %}<h2>{{ s.title }}</h2>
{% if s.text %}<pre>{{ s.text }}</pre>{% endif %}
{% for img in s.images %}<figure><img src="data:image/png;base64,{{ img.b64 }}" alt="{{ img.name }}">
<figcaption>{{ img.caption }}</figcaption></figure>{% endfor %}
{% endfor %}</body></html>
"""


def _render(title: str, sections: list[dict[str, Any]]) -> str:
    try:
        import jinja2
    except ImportError:
        parts = [_PAGE.split("{% for s in sections %}")[0].replace("{{ title }}", html.escape(title))]
        for s in sections:
            parts.append(f"<h2>{html.escape(s['title'])}</h2>\n")
            if s.get("text"):
                parts.append(f"<pre>{html.escape(s['text'])}</pre>\n")
            for img in s["images"]:
                parts.append(
                    f'<figure><img src="data:image/png;base64,{img["b64"]}" alt="{html.escape(img["name"])}">'
                    f"<figcaption>{html.escape(img['caption'])}</figcaption></figure>\n"
                )
        parts.append("</body></html>\n")
        return "".join(parts)
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_PAGE).render(title=title, sections=sections)


def _read_training(folder: Path) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Validation rows and loss records of a training-run folder; a malformed file is one-line bad input."""
    from densharp.errors import InputError

    val: list[dict[str, float]] = []
    loss: list[dict[str, float]] = []
    vc = folder / "val_curve.csv"
    if vc.is_file():
        try:
            with vc.open(encoding="utf-8") as fh:
                for i, r in enumerate(csv.DictReader(fh), start=2):
                    try:
                        row = {k: float(v) for k, v in r.items() if k is not None and v not in ("", None)}
                    except (TypeError, ValueError) as exc:
                        raise InputError(
                            f"{vc}: line {i} is not numeric CSV ({exc}); regenerate it (densharp train writes it)"
                        ) from None
                    if "step" not in row:
                        raise InputError(f"{vc}: line {i} has no 'step' column; regenerate the file")
                    val.append(row)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{vc}: cannot read it as CSV ({exc}); regenerate it") from None
    tl = folder / "train_log.jsonl"
    if tl.is_file():
        try:
            lines = tl.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{tl}: cannot read it as text ({exc}); regenerate it") from None
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                if i == len(lines):  # a run killed mid-write leaves a partial last line: skip it
                    continue
                raise InputError(f"{tl}: line {i} is not JSON ({exc.msg}); fix or remove that line") from None
            if isinstance(rec, dict) and "step" in rec and "loss" in rec:
                if not all(isinstance(rec[k], (int, float)) for k in ("step", "loss")):
                    raise InputError(f"{tl}: line {i}: step and loss must be numbers; fix or remove that line")
                loss.append(rec)
    return val, loss


def planned_pngs(
    out_html: str | os.PathLike[str],
    run: dict[str, Any] | None = None,
    training_dir: str | os.PathLike[str] | None = None,
    max_cases: int = 4,
) -> list[Path]:
    """The PNG files :func:`build_report` will write for these arguments (checked before anything is drawn)."""
    out = Path(out_html)
    stem = out.name.rsplit(".", 1)[0]
    names: list[str] = []
    if run is not None and run.get("schema") == "densharp.hallucination/1":
        names.append("hallucination")
    elif run is not None:
        if run.get("summary"):
            names.append("rscc_bins")
        for i, case in enumerate(run["cases"][:max_cases]):
            methods = case["methods"].values()
            if any(r.get("fsc") for r in methods):
                names.append(f"case{i}_fsc")
            if any(r.get("half_fsc") for r in methods):
                names.append(f"case{i}_halffsc")
            if case.get("slices"):
                names.append(f"case{i}_slices")
    if training_dir is not None:
        val, loss = _read_training(Path(training_dir))
        if val or loss:
            names.append("training")
    return [out.with_name(f"{stem}_{n}.png") for n in names]


def build_report(
    out_html: str | os.PathLike[str],
    run: dict[str, Any] | None = None,
    training_dir: str | os.PathLike[str] | None = None,
    title: str = "densharp report",
    max_cases: int = 4,
) -> list[Path]:
    """Draw the PNGs beside ``out_html`` (``<stem>_*.png``) and write the HTML; return the PNG paths."""
    from densharp.evaluate.table import format_table
    from densharp.io.atomic import readable_path, write_text_atomic

    out = Path(out_html)
    stem = out.name.rsplit(".", 1)[0]
    pngs: list[Path] = []
    sections: list[dict[str, Any]] = []

    def png(name: str) -> Path:
        p = out.with_name(f"{stem}_{name}.png")
        pngs.append(p)
        return p

    def img(p: Path, caption: str) -> dict[str, Any]:
        data = readable_path(p).read_bytes()  # inside an OutputSet the PNG is still a staged temporary
        return {"name": p.name, "caption": caption, "b64": base64.b64encode(data).decode("ascii")}

    if run is not None and run.get("schema") == "densharp.hallucination/1":
        from densharp.evaluate.hallucination import format_hallucination

        p = png("hallucination")
        plots.save_hallucination_plot(p, run)
        sections.append(
            {
                "title": "Hallucination (omit) test",
                "text": format_hallucination(run),
                "images": [img(p, "invention score and noise SD ratios per method")],
            }
        )
    elif run is not None:
        summary = run.get("summary")
        if summary:
            p = png("rscc_bins")
            plots.save_bin_bar_plot(p, summary, title=f"{summary['metric']} by input-resolution bin")
            sections.append(
                {
                    "title": "Summary",
                    "text": format_table(summary),
                    "images": [img(p, f"mean {summary['metric']} per bin")],
                }
            )
        for i, case in enumerate(run["cases"][:max_cases]):
            images = []
            curves = {n: r["fsc"] for n, r in case["methods"].items() if r.get("fsc")}
            if curves:
                p = png(f"case{i}_fsc")
                plots.save_fsc_plot(p, curves, title=f"{case['case']}: FSC against the target")
                images.append(img(p, "map–target FSC; identity is the input itself"))
            half = {n: r["half_fsc"] for n, r in case["methods"].items() if r.get("half_fsc")}
            if half:
                p = png(f"case{i}_halffsc")
                plots.save_fsc_plot(p, half, title=f"{case['case']}: method(half 1) vs untouched half 2")
                images.append(img(p, "model-free check: FSC of processed half map 1 against half map 2"))
            sl = case.get("slices")
            if sl:
                outs = [k for k in sl if k.startswith("output:")]
                sds = [k for k in sl if k.startswith("sd:")]
                p = png(f"case{i}_slices")
                plots.save_slices_plot(
                    p, sl, ["input", *outs, "target", *sds], title=case["case"], shared=("input", *outs)
                )
                images.append(
                    img(
                        p,
                        "central sections (xy at middle z: x right, y up; xz at middle y: x right, z up; yz at "
                        "middle x: y right, z up); input and outputs share one grey scale, target and SD own scales",
                    )
                )
            rows = [
                f"{n:<24} "
                + (
                    f"skipped: {r['skipped']}"
                    if r.get("skipped")
                    else f"RSCC box {r['rscc_box']:.4f}  mask {r['rscc_mask']:.4f}  FSC0.5 {r['d_fsc05_A']} Å  "
                    f"FSC0.143 {r['d_fsc0143_A']} Å"
                )
                for n, r in case["methods"].items()
            ]
            text = f"input resolution {case['d_input_A']} Å, bin {case['bin']}; mask: {case['mask']}\n" + "\n".join(
                rows
            )
            sections.append({"title": f"Case {case['case']}", "text": text, "images": images})
    if training_dir is not None:
        val, loss = _read_training(Path(training_dir))
        if val or loss:
            p = png("training")
            plots.save_training_plot(p, val, loss)
            sections.append(
                {
                    "title": f"Training run {training_dir}",
                    "text": "" if not val else "last validation row: " + json.dumps(val[-1]),
                    "images": [img(p, "training loss and validation masked RSCC (with identity/auto-B baselines)")],
                }
            )
    write_text_atomic(out, _render(title, sections))
    return pngs
