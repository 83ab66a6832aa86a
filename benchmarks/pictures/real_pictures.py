"""The real-photo pictures of the README and ``docs/``: the shipped faces model on London-set faces and the cats
model on held-out cat photos, as the paper's Fig. 1 and Fig. 5 show its models.

    python benchmarks/pictures/real_pictures.py --faces london/ --cats cats_val/ --out docs/images [--count 4]
    python benchmarks/pictures/real_pictures.py --faces london/ --faces-model faces-synthetic --name synthetic_on_london
    python benchmarks/pictures/real_pictures.py --faces london/ --refine 50 --name refined

One row per photo (the first ``--count`` by sorted name, spread evenly over the folder): input (cropped as
``unsup3d reconstruct --crop face`` crops it; the cat photos are already crops), reconstruction, albedo, shading,
canonical normals, depth in the input view, the asymmetry overlay, the textured shape turned to yaw −40° and +40°,
the shape alone at +40°, and the canonical image relit from the left and from the right. Written:
``<name>_faces.png`` and ``<name>_cats.png`` (``--name`` default ``real``). ``--refine N`` refines each photo's
reconstruction on that photo for N steps first (``unsup3d reconstruct --refine``).

Only London-set faces (CC BY 4.0, DeBruine & Jones 2017, doi:10.6084/m9.figshare.5047666) may be committed to
the project's pictures: the cat photos' source states no licence, so write their picture outside the repository
(``--out runs/pictures``), and never show a UTKFace person.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from unsup3d.inference import SHIPPED_MODELS, Reconstruction, Reconstructor
from unsup3d.inference.refine import RefineSettings
from unsup3d.outputs import collect_inputs
from unsup3d.outputs.overlays import asymmetry_overlay, object_mask
from unsup3d.viz import depth_to_image, image_grid, normals_to_image, to_uint8

COLUMNS = (
    "input",
    "reconstruction",
    "albedo",
    "shading",
    "normals",
    "depth",
    "asymmetry",
    "yaw -40",
    "yaw +40",
    "shape +40",
    "light left",
    "light right",
)
TURN = math.radians(40)
SCALE = 2  # pictures are enlarged this many times (nearest neighbour)


def spread(paths: list[Path], count: int) -> list[Path]:
    """``count`` paths spread evenly over the sorted list (the first, then every len/count-th)."""
    step = max(len(paths) // count, 1)
    return paths[::step][:count]


def columns(rec: Reconstruction) -> list[torch.Tensor]:
    """The (B, 3, S, S) pictures of :data:`COLUMNS`, in [0, 1]."""
    batch = len(rec)

    def turned(yaw: float, appearance: str) -> torch.Tensor:
        view = torch.zeros(batch, 6)
        view[:, 1] = yaw
        return rec.render(view, appearance)

    grey = rec.canonical_shading.clamp(0, 1).expand(batch, 3, -1, -1)
    depth = depth_to_image(rec.depth).expand(batch, 3, -1, -1)
    mask = object_mask(rec.canonical_depth, rec.view, rec.fov)
    asymmetry = rec.image if rec.confidence is None else asymmetry_overlay(rec.image, rec.confidence, mask)
    return [
        rec.image,
        rec.recon_image,
        rec.canonical_albedo,
        grey,
        normals_to_image(rec.canonical_normal),
        depth.nan_to_num(1.0),
        asymmetry,
        turned(-TURN, "texture"),
        turned(TURN, "texture"),
        turned(TURN, "shape"),
        rec.relight(torch.tensor([-1.0, -0.3, 1.0])),
        rec.relight(torch.tensor([1.0, -0.3, 1.0])),
    ]


def picture(reconstructor: Reconstructor, paths: list[Path], crop: str, out: Path) -> None:
    images = reconstructor.load_images(paths, crop=crop, crop_fallback="none")
    rec = reconstructor(images)
    pictures = columns(rec)  # each (B, 3, S, S)
    rows = [torch.stack([p[i] for p in pictures]) for i in range(len(rec))]  # each (columns, 3, S, S)
    grid = image_grid(rows)  # (3, H, W)
    grid = F.interpolate(grid[None], scale_factor=SCALE, mode="nearest")[0]
    Image.fromarray(to_uint8(grid)).save(out)
    print(f"{out}: {len(rec)} photos; columns: {', '.join(COLUMNS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, help="London-set faces (whole photos: cropped to the face here)")
    parser.add_argument("--cats", type=Path, help="held-out cat-face crops")
    parser.add_argument("--faces-model", default="faces", help="a shipped model's name, or weights / a run")
    parser.add_argument("--cats-model", default="cats", help="a shipped model's name, or weights / a run")
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--name", default="real")
    parser.add_argument("--refine", type=int, default=0, help="steps of per-photo refinement (0: none)")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    subjects = ((args.faces, args.faces_model, "face", "faces"), (args.cats, args.cats_model, "none", "cats"))
    for folder, model, crop, kind in subjects:
        if folder is not None:
            photos = spread(collect_inputs([folder]), args.count)
            reconstructor = load(model)
            reconstructor.refinement = RefineSettings(steps=args.refine)
            picture(reconstructor, photos, crop, args.out / f"{args.name}_{kind}.png")


def load(model: str) -> Reconstructor:
    """A shipped model by name, or weights, a checkpoint or a run directory by path."""
    if model in SHIPPED_MODELS:
        return Reconstructor.pretrained(model, "cpu")
    return Reconstructor.from_checkpoint(model, "cpu")


if __name__ == "__main__":
    main()
