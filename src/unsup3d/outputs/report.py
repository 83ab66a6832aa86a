"""An offline HTML report of a reconstruction folder: ``index.html`` beside the per-image folders.

Every link is relative and nothing comes from the network (no CDN, no script), so the folder can be zipped,
moved or opened from disk. Each image gets a section with its pictures (maps, overlays, relighting grid, novel
views), its turntable and links to its files (meshes, depth arrays, view and light).
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

__all__ = ["REPORT_NAME", "write_report"]

REPORT_NAME = "index.html"
# Pictures in the order a section shows them, with their captions.
PICTURES = {
    "input.png": "input",
    "symmetry.png": "symmetry plane",
    "asymmetry.png": "asymmetry (σ′)",
    "reconstruction.png": "reconstruction",
    "canonical_image.png": "canonical image",
    "albedo.png": "albedo",
    "shading.png": "shading",
    "normal.png": "normals",
    "depth.png": "depth",
    "canonical_depth.png": "canonical depth",
    "confidence.png": "confidence σ, σ′",
    "relight.png": "relighting",
    "views.png": "novel views",
    "turntable.gif": "turntable",
}
DOWNLOADS = (
    "mesh.glb",
    "mesh.obj",
    "mesh.mtl",
    "mesh.ply",
    "turntable.mp4",
    "depth.npy",
    "canonical_depth.npy",
    "depth_16bit.png",
    "view_light.json",
)
STYLE = (
    "body{font-family:sans-serif;margin:1.5em;background:#fafafa}"
    "section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1em;margin-bottom:1.5em}"
    "figure{display:inline-block;margin:0 .6em .6em 0;text-align:center;vertical-align:top}"
    "img{height:160px;image-rendering:pixelated;border:1px solid #ccc}"
    "figcaption{font-size:.8em;color:#555}"
)


def write_report(output: str | Path, folders: list[str], failed: list[tuple[str, str]] | None = None) -> Path:
    """Write ``output/index.html`` over the per-image ``folders`` (names relative to ``output``).

    Args:
        output: the reconstruction folder.
        folders: one sub-folder per image, in the order to show.
        failed: ``(input, reason)`` of inputs that produced nothing, listed at the end.
    Returns:
        The report's path.
    """
    output = Path(output)
    sections = [_section(output, folder) for folder in folders]
    if failed:
        items = "".join(f"<li>{html.escape(str(name))}: {html.escape(reason)}</li>" for name, reason in failed)
        sections.append(f"<section><h2>Not reconstructed</h2><ul>{items}</ul></section>")
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>unsup3d reconstructions</title>"
        f"<style>{STYLE}</style></head><body><h1>unsup3d reconstructions ({len(folders)})</h1>"
        + "\n".join(sections)
        + "</body></html>\n"
    )
    target = output / REPORT_NAME
    target.write_text(page, encoding="utf-8")
    return target


def _section(output: Path, folder: str) -> str:
    """One image's pictures and downloads, linking only the files that exist."""
    present = {path.name for path in (output / folder).iterdir()} if (output / folder).is_dir() else set()
    figures = [
        f"<figure><img src='{_href(folder, name)}' alt='{html.escape(caption)}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, caption in PICTURES.items()
        if name in present
    ]
    links = [f"<a href='{_href(folder, name)}'>{html.escape(name)}</a>" for name in DOWNLOADS if name in present]
    return (
        f"<section id='{html.escape(folder, quote=True)}'><h2>{html.escape(folder)}</h2>"
        + "".join(figures)
        + (f"<p>files: {' · '.join(links)}</p>" if links else "")
        + "</section>"
    )


def _href(folder: str, name: str) -> str:
    return html.escape(f"{quote(folder)}/{quote(name)}", quote=True)
