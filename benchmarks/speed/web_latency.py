"""The web page's latency on this machine, measured in a real browser: ``unsup3d serve`` driven by Debian's
Chromium through Playwright (the browser test's harness, ``src/unsup3d/testing.py``).

    python benchmarks/speed/web_latency.py [--uploads 5] [--relights 10]

Prints, for uploads of scikit-image's astronaut photo (``--crop face``): seconds from choosing the file to the
status line reporting every result (crop, reconstruction, maps, GLB, turntable and downloads written, page
updated), and the server's own share of it; then seconds from moving the light control to the relit picture.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
from pathlib import Path

from PIL import Image

from unsup3d.testing import browser_page, running_server, set_light_x, upload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--relights", type=int, default=10)
    args = parser.parse_args()
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photos = [folder / f"astronaut_{k}.png" for k in range(args.uploads)]  # new names: nothing cached
        for path in photos:
            Image.fromarray(data.astronaut()).save(path)
        with running_server(folder) as (url, _, _), browser_page(url) as page:
            total, server = [], []
            for path in photos:
                total.append(upload(page, path))
                found = re.search(r"in ([0-9.]+) s", page.inner_text("#status"))
                server.append(float(found.group(1)) if found else float("nan"))
            relight = [set_light_x(page, round(-1.4 + 0.3 * (k % 10), 1)) for k in range(args.relights)]
    print(f"upload to all results: {_summary(total)} (server: {_summary(server)}), first one {total[0]:.2f} s")
    print(f"relight: {_summary(relight)}")


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s, min {min(values):.3f}, max {max(values):.3f}, n={len(values)}"


if __name__ == "__main__":
    main()
