"""Writing figures: Altair charts to offline HTML, SVG or PNG and Vega-Lite specs, with
vl-convert (no network, no browser); the inlined JavaScript bundle for the dashboard."""

from __future__ import annotations

import functools
import html
import json
import re
import tempfile
from pathlib import Path

import altair as alt
import vl_convert

from weightzoo.io import atomic_path


def _vl_version() -> str | None:
    """The Vega-Lite version Altair writes specs for, as vl-convert names it ('6.4')."""
    version = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return version if version in vl_convert.get_vegalite_versions() else None


VL_VERSION = _vl_version()


def chart_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec (a JSON-ready dict, data inline), e.g. for the dashboard."""
    return chart.to_dict()


_REMOTE = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.I
)


def check_offline(html: str, what: str = "page") -> None:
    """Raise if the HTML loads a script, style sheet, image or frame from the network."""
    found = _REMOTE.search(html)
    if found:
        raise RuntimeError(f"{what} would load {found.group(0)!r} from the network")


def save_chart(
    chart: alt.TopLevelMixin,
    html_path: str | Path,
    image_path: str | Path,
    caption: str = "",
    zoo: str = "",
) -> tuple[Path, Path]:
    """Write the chart as a self-contained offline HTML (Vega libraries inlined; `caption`
    and `zoo`, plain text, below the chart, so the page stands alone) and as an image, SVG or
    PNG by `image_path`'s suffix; both atomically. Returns the two paths."""
    html_path, image_path = Path(html_path), Path(image_path)
    suffix = image_path.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise ValueError(f"image path {image_path} must end in .svg or .png")
    spec = chart_spec(chart)
    page = offline_html(spec, title=html_path.stem, caption=caption, zoo=zoo)
    check_offline(page, str(html_path))
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    with atomic_path(image_path) as tmp:
        if suffix == ".svg":
            tmp.write_text(vl_convert.vegalite_to_svg(spec, vl_version=VL_VERSION), "utf-8")
        else:
            tmp.write_bytes(vl_convert.vegalite_to_png(spec, vl_version=VL_VERSION, scale=2))
    return html_path, image_path


def save_spec(record: dict, path: str | Path) -> None:
    """A figure's record for the dashboard (name, title, caption, spec), as JSON."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(record))


def script_json(value) -> str:
    """JSON that cannot close or comment out the <script> element it sits in."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def offline_html(spec: dict, title: str = "figure", caption: str = "", zoo: str = "") -> str:
    """One self-contained page that draws `spec`: the libraries inlined, no network; the
    caption's paragraphs (blank-line separated) and the zoo's sentence below the chart."""
    notes = "".join(
        f"<p>{html.escape(' '.join(p.split()))}</p>" for p in caption.split("\n\n") if p.strip()
    )
    if zoo:
        notes += f'<p class="zoo">{html.escape(zoo)}</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 1em; }}
.caption {{ max-width: 60em; color: #333; line-height: 1.45; }} .zoo {{ color: #666; }}</style>
<script>{javascript_bundle()}</script></head>
<body><div id="vis"></div><div class="caption">{notes}</div>
<script>vegaEmbed("#vis", {script_json(spec)}, {{"renderer": "svg"}}).catch(console.error);</script>
</body></html>
"""


def _bundle_cache() -> Path:
    """Where the bundle is kept between jobs: one file per vl-convert and Vega-Lite version."""
    name = f"weightzoo-vega-{vl_convert.__version__}-{VL_VERSION}.js"
    return Path(tempfile.gettempdir()) / name


@functools.cache
def javascript_bundle() -> str:
    """vega-embed, Vega-Lite and Vega as one classic script that defines `window.vegaEmbed`,
    for the Vega-Lite version Altair writes; safe to inline in a <script> element. Building
    it takes vl-convert about a second, so every figure job after the first reads it from a
    file in the temporary folder (written atomically, keyed by both versions)."""
    cache = _bundle_cache()
    if cache.is_file():
        return cache.read_text(encoding="utf-8")
    bundle = vl_convert.javascript_bundle("window.vegaEmbed = vegaEmbed;", vl_version=VL_VERSION)
    bundle = re.sub(r"</(script)", r"<\\/\1", bundle, flags=re.I)
    with atomic_path(cache) as tmp:
        tmp.write_text(bundle, encoding="utf-8")
    return bundle
