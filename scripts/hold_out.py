"""Split a folder of photos for training: the last N by sorted file name are held out (validation and the
real-photo scores), the rest train. Writes two folders of symbolic links, nothing is copied:

    python scripts/hold_out.py PHOTOS OUT --count 300     # OUT/train/ and OUT/held_out/

The order is :func:`unsup3d.data.images.find_images`'s (folder, then file name), so the split is the same on
every machine for the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unsup3d.data.images import find_images


def link_all(paths: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(paths):
        link = folder / f"{index:06d}_{path.name}"  # unique even when sub-folders repeat a name; order kept
        if not link.is_symlink():
            link.symlink_to(path.resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, required=True, help="photos held out (the last by sorted name)")
    args = parser.parse_args()
    paths = find_images(args.photos)
    if not 0 < args.count < len(paths):
        raise SystemExit(f"--count must be between 1 and {len(paths) - 1} for {len(paths)} photos")
    link_all(paths[: -args.count], args.out / "train")
    link_all(paths[-args.count :], args.out / "held_out")
    print(f"{len(paths) - args.count} photos to train on in {args.out / 'train'}, {args.count} held out")


if __name__ == "__main__":
    main()
