"""Writing the built-in synthetic dataset (faces or cars) to disk (``unsup3d synth``): images, exact depth,
masks, views.

The samples themselves come from :mod:`unsup3d.synthetic.generator`; this module lays them out in files, in
parallel processes for large sets.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from unsup3d.geometry import FOV_DEGREES, focal_length
from unsup3d.synthetic.categories import get_category
from unsup3d.synthetic.generator import (
    GENERATOR_VERSION,
    LIGHT_RANGES,
    MAX_KA_PLUS_KD,
    PATCH_ALPHA,
    PATCH_SIDE,
    POSE_RANGES,
    render_params,
    sample_generator,
    sample_params,
)
from unsup3d.synthetic.keypoints import FACE_KEYPOINTS, VISIBILITY_TOLERANCE, face_keypoints, has_keypoints
from unsup3d.viz import to_uint8


def _write_chunk(
    out_dir: Path,
    split: int,
    start: int,
    stop: int,
    width: int,
    seed: int,
    size: int,
    fov: float,
    perturb: bool,
    category: str,
):
    """Render samples ``start .. stop-1`` of a split and write their files; returns the test meta records."""
    from PIL import Image

    test = split == 1
    params = [sample_params(sample_generator(seed, split, k), size, perturb, category) for k in range(start, stop)]
    batch = render_params(params, size, fov, depth=test, canonical=False)
    keypoints = face_keypoints(params, size, fov) if test and has_keypoints(category) else None
    records = []
    for k in range(stop - start):
        name = f"{start + k:0{width}d}"
        image = Image.fromarray(to_uint8(batch.image[k]))
        if not test:
            image.save(out_dir / "train" / f"{name}.png")
            continue
        image.save(out_dir / "test" / "image" / f"{name}.png")
        np.save(out_dir / "test" / "depth" / f"{name}.npy", batch.depth[k].numpy().astype(np.float32))
        Image.fromarray(batch.mask[k].numpy().astype(np.uint8) * 255).save(out_dir / "test" / "mask" / f"{name}.png")
        record = {"name": name, "view": batch.view[k].tolist(), "light": batch.light[k].tolist()}
        if keypoints is not None:
            record["keypoints"] = keypoints.record(k)
        if perturb:
            record["patch"] = params[k].patch.record()
        records.append(record)
    return stop - start, records


def _init_worker() -> None:
    torch.set_num_threads(1)


def _run_chunks(jobs: list[tuple], workers: int, bar):
    """Run :func:`_write_chunk` on every job, in this process or in ``workers`` forked processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for job in jobs:
            count, records = _write_chunk(*job)
            bar.update(count)
            yield from records
        return
    # fork (not spawn) so that callers need no ``if __name__ == "__main__"`` guard; workers run one torch thread.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        for count, records in pool.map(_write_chunk, *zip(*jobs, strict=True)):
            bar.update(count)
            yield from records


def dataset_description(
    n_train: int, n_test: int, size: int, seed: int, fov: float, perturb: bool = False, category: str = "face"
) -> dict:
    """The ``dataset.json`` record: generator, version, category, seed, counts, camera, distribution, keypoints
    (faces only, else None) and the perturbation (None when off)."""
    return {
        "generator": "unsup3d.synthetic.generator",
        "version": GENERATOR_VERSION,
        "category": category,
        "seed": seed,
        "n_train": n_train,
        "n_test": n_test,
        "size": size,
        "camera": {
            "fov_deg": fov,
            "focal_px": focal_length(size, fov),
            "principal_point": [(size - 1) / 2, (size - 1) / 2],
            "frame": "x right, y down, z forward; pixel centres at integer coordinates",
        },
        "view_convention": "(rx, ry, rz, tx, ty, tz), radians and metres; X' = R (X - c) + c + t, "
        "R = Rz Ry Rx, c = (0, 0, 1); positive ry moves the nose tip towards -u",
        "light_model": "albedo * (ka + kd * max(0, <n, l>)), l = (lx, ly, 1) / |(lx, ly, 1)|, canonical frame, "
        "normals point away from the camera",
        "depth": "test/depth/<name>.npy float32 (S, S), exact depth in the input view, NaN on the background",
        "pose_ranges": {k: list(v) for k, v in POSE_RANGES.items()},
        "light_ranges": {k: list(v) for k, v in LIGHT_RANGES.items()},
        "max_ka_plus_kd": MAX_KA_PLUS_KD,
        "shape_ranges": {k: list(v) for k, v in get_category(category).shape_ranges.items()},
        "keypoints": None
        if not has_keypoints(category)
        else {
            "names": list(FACE_KEYPOINTS),
            "file": "test/meta.jsonl, key 'keypoints': 'uv', 'depth', 'visible', one entry per name",
            "uv": "pixel coordinates (column, row) in the image, pixel centres at integers",
            "depth": "exact camera depth of the keypoint (a head-mesh vertex) in the input view",
            "visible": f"nothing nearer than {VISIBILITY_TOLERANCE} on its ray, and uv inside [0, S-1]^2",
            "sides": "left/right are image sides in the canonical (frontal) view: left is -x",
        },
        "perturbation": _perturbation_description() if perturb else None,
    }


def _perturbation_description() -> dict:
    return {
        "kind": "one axis-aligned rectangle of a uniform random RGB colour per image, train and test",
        "side_fraction": list(PATCH_SIDE),
        "alpha": list(PATCH_ALPHA),
        "blend": "(1 - alpha) * image + alpha * colour on the finished image, after noise and JPEG",
        "file": "test/meta.jsonl, key 'patch': top, left, height, width (pixels), colour, alpha",
    }


def write_dataset(
    out_dir: str | Path,
    n_train: int,
    n_test: int,
    size: int = 64,
    seed: int = 0,
    fov: float = FOV_DEGREES,
    progress: bool = True,
    batch_size: int = 64,
    workers: int | None = None,
    perturb: bool = False,
    category: str = "face",
) -> Path:
    """Write a synthetic dataset of ``category`` (a name of :data:`.categories.CATEGORIES`).

    Layout: ``train/<name>.png`` (images only), ``test/image/<name>.png``, ``test/depth/<name>.npy`` (float32
    (S, S), NaN background), ``test/mask/<name>.png`` (0/255), ``test/meta.jsonl`` (name, view, light,
    keypoints for faces and, when perturbed, the patch per line), ``dataset.json`` and ``README.txt``. Names are
    zero-padded indices (``00000``). Train and test samples come from disjoint generator streams
    (:func:`sample_generator`); the output is deterministic for a seed and independent of ``batch_size``.

    Args:
        perturb: the asymmetric perturbation of the paper's Table 4 on every image (see
            :mod:`unsup3d.synthetic.generator`); the images of an unperturbed set do not depend on this option.
        workers: processes rendering in parallel (one torch thread each); default: up to 2 (the CPU count) for
            more than 1000 samples, else 1 (in this process).
    Returns:
        The output directory.
    """
    from tqdm import tqdm

    get_category(category)  # an unknown name fails before any file is written
    out = Path(out_dir)
    for sub in ("train", "test/image", "test/depth", "test/mask"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    description = dataset_description(n_train, n_test, size, seed, fov, perturb, category)
    (out / "dataset.json").write_text(json.dumps(description, indent=2) + "\n")
    (out / "README.txt").write_text(_readme(description))
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if n_train + n_test > 1000 else 1
    width = max(5, len(str(max(n_train, n_test, 1) - 1)))
    jobs = [
        (out, split, start, min(start + batch_size, count), width, seed, size, fov, perturb, category)
        for split, count in ((0, n_train), (1, n_test))
        for start in range(0, count, batch_size)
    ]
    with tqdm(total=n_train + n_test, disable=not progress, desc="synth") as bar:
        records = list(_run_chunks(jobs, workers, bar))
    with open(out / "test" / "meta.jsonl", "w") as meta:
        meta.writelines(json.dumps(record) + "\n" for record in records)
    return out


def _readme(description: dict) -> str:
    return (
        f"unsup3d synthetic {get_category(description['category']).plural} "
        f"(generator version {description['version']}, seed {description['seed']})\n"
        f"{description['n_train']} training images in train/, {description['n_test']} test samples in test/.\n"
        f"Images {description['size']}x{description['size']} RGB PNG, "
        f"field of view {description['camera']['fov_deg']} deg.\n"
        "test/depth/*.npy: float32 exact depth of the object in the input view, NaN on the background.\n"
        "test/mask/*.png: 255 where the object covers the pixel centre (= isfinite(depth)).\n"
        "test/meta.jsonl: true view (rx, ry, rz, tx, ty, tz) and light (ka, kd, lx, ly) per sample, and\n"
        f"{_keypoint_line(description['keypoints'])}"
        f"{_perturbation_line(description['perturbation'])}"
        f"View convention: {description['view_convention']}.\n"
        f"Light model: {description['light_model']}.\n"
        "Full parameter ranges: dataset.json. Generated by unsup3d.synthetic.dataset.write_dataset.\n"
    )


def _keypoint_line(keypoints: dict | None) -> str:
    if keypoints is None:
        return "no keypoints (they are defined for faces only).\n"
    return f"{len(keypoints['names'])} face keypoints (pixel uv, true depth, visibility: dataset.json).\n"


def _perturbation_line(perturbation: dict | None) -> str:
    if perturbation is None:
        return "No asymmetric perturbation.\n"
    (low, high), (alpha_low, alpha_high) = perturbation["side_fraction"], perturbation["alpha"]
    return (
        f"Asymmetric perturbation: every image has one random colour rectangle, sides {low:.0%}-{high:.0%} of the "
        f"image, alpha {alpha_low}-{alpha_high} (test rectangles in test/meta.jsonl).\n"
    )
