"""The model inside the package: it loads from safetensors (no pickle) and reproduces the outputs its float32
checkpoint gave on four generated faces (stored by ``benchmarks/experiments/shipped_model.py --write-reference``)."""

from pathlib import Path

import numpy as np
import torch

from unsup3d import Reconstructor
from unsup3d.synthetic.generator import render_batch, sample_generator

REFERENCE = Path(__file__).parent / "data" / "shipped_reference.npz"


def test_shipped_model_reproduces_its_reference_outputs():
    reconstructor = Reconstructor.pretrained("faces-synthetic", device="cpu")
    assert reconstructor.checkpoint_path.suffix == ".safetensors" and reconstructor.iteration == 3000
    images = render_batch([sample_generator(7, 1, k) for k in range(4)], 64, depth=False, canonical=False).image
    rec = reconstructor(images)
    expected = np.load(REFERENCE)
    # float16 weights against the float32 checkpoint: measured |Δdepth| mean 3e-6 on the 300 test faces, up to
    # 4e-2 on a few silhouette pixels where the rasteriser picks another face; the view within 1e-4.
    torch.testing.assert_close(rec.view, torch.from_numpy(expected["view"]), atol=5e-4, rtol=0)
    torch.testing.assert_close(rec.light_direction, torch.from_numpy(expected["light_direction"]), atol=5e-4, rtol=0)
    canonical = torch.from_numpy(expected["canonical_depth"])
    torch.testing.assert_close(rec.canonical_depth, canonical, atol=2e-4, rtol=0)
    torch.testing.assert_close(rec.canonical_albedo, torch.from_numpy(expected["canonical_albedo"]), atol=5e-3, rtol=0)
    depth, reference = rec.depth, torch.from_numpy(expected["depth"])
    both = torch.isfinite(depth) & torch.isfinite(reference)
    assert float(both.float().mean()) > 0.99 * float(torch.isfinite(reference).float().mean())
    assert float((depth - reference)[both].abs().median()) < 1e-4


def test_the_shipped_model_learned_3d():
    """Not a flat map: a face's nose is nearer than its cheeks (the canonical depth has relief)."""
    rec = Reconstructor.pretrained("faces-synthetic", device="cpu")(
        render_batch([sample_generator(7, 1, k) for k in range(4)], 64, depth=False, canonical=False).image
    )
    centre = rec.canonical_depth[:, 28:36, 28:36].mean(dim=(1, 2))
    cheeks = rec.canonical_depth[:, 28:36, 12:18].mean(dim=(1, 2))
    assert bool((cheeks - centre > 0.005).all()), (cheeks - centre).tolist()
