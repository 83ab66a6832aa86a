"""The pieces of a small model's training step, timed alone: what each costs in the layouts and precisions the
step can use, and what the step's own choices (fused Adam, one gradient check, the cross product) save.

    python benchmarks/speed/step_parts.py                 # the cpu preset's shapes at batch 16
    python benchmarks/speed/step_parts.py --batch-size 32

Printed, each the median of ``--repeats`` runs after a warm-up, forward + backward unless marked "fwd":
the full-resolution convolutions of the depth and albedo decoders (5×5 and 3×3, nf → nf, and the 5×5 output
layers nf → 1 / 3) in float32 and bfloat16, NCHW and channels-last; GroupNorm at full resolution in both layouts
and precisions; Adam over the cpu preset's parameters, for-each against fused; the non-finite gradient check, one
reduction per tensor against one multi-tensor norm; and the normals' cross product, ``torch.linalg.cross``
against its component formula.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from unsup3d.config import build_config, load_preset
from unsup3d.engine.training import build_training
from unsup3d.geometry.normals import cross

LAYOUTS = {"nchw": torch.contiguous_format, "channels-last": torch.channels_last}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def forward_backward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    """A closure running ``fn(x)`` and its backward with a fixed upstream gradient."""
    grad = torch.ones_like(fn(x))

    def run() -> None:
        x.grad = None
        fn(x).backward(grad)

    return run


def convolutions(batch: int, nf: int, size: int, repeats: int) -> None:
    print(f"convolutions at {size}×{size}, batch {batch} (ms forward + backward)")
    print(f"{'layer':>16} " + " ".join(f"{d + ' ' + lay:>24}" for d in DTYPES for lay in LAYOUTS))
    for cout, kernel in ((nf, 5), (nf, 3), (1, 5), (3, 5)):
        cells = []
        for dtype in DTYPES.values():
            for layout in LAYOUTS.values():
                weight = torch.randn(cout, nf, kernel, kernel, dtype=dtype).to(memory_format=layout)
                weight.requires_grad_()
                x = torch.randn(batch, nf, size, size, dtype=dtype).to(memory_format=layout).requires_grad_()
                run = forward_backward(lambda t, w=weight, k=kernel: F.conv2d(t, w, padding=k // 2), x)
                cells.append(median_ms(run, repeats))
        print(f"{f'{nf}→{cout} {kernel}×{kernel}':>16} " + " ".join(f"{c:24.2f}" for c in cells))


def group_norms(batch: int, nf: int, size: int, repeats: int) -> None:
    print(f"\nGroupNorm ({nf // 4} groups of 4) at {size}×{size}, batch {batch} (ms forward + backward)")
    for dtype_name, dtype in DTYPES.items():
        for layout_name, layout in LAYOUTS.items():
            x = torch.randn(batch, nf, size, size, dtype=dtype).to(memory_format=layout).requires_grad_()
            weight, bias = torch.ones(nf, dtype=dtype), torch.zeros(nf, dtype=dtype)
            run = forward_backward(lambda t, w=weight, b=bias: F.group_norm(t, nf // 4, w, b), x)
            print(f"{dtype_name:>9} {layout_name:>14}: {median_ms(run, repeats):6.2f}")


def optimiser_and_check(batch: int, repeats: int) -> None:
    training = build_training(build_config(load_preset("cpu")))
    images = torch.rand(batch, 3, 64, 64)
    training.loss_terms(images, 10**4)["total"].backward()
    params = list(training.model.parameters())
    grads = [p.grad for p in params if p.grad is not None]
    count = sum(p.numel() for p in params)
    print(f"\nAdam over the cpu preset's {len(params)} tensors ({count / 1e6:.2f} M parameters), ms per step")
    for name, options in (("for-each", {}), ("fused", {"fused": True})):
        optimizer = torch.optim.Adam(params, lr=1e-4, **options)
        print(f"{name:>9}: {median_ms(optimizer.step, repeats):6.2f}")
    print("non-finite gradient check, ms")
    per_tensor = median_ms(lambda: bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()), repeats)
    one_norm = median_ms(lambda: bool(torch.isfinite(torch.nn.utils.get_total_norm(grads, foreach=True))), repeats)
    print(f"{'per tensor':>10}: {per_tensor:6.2f}\n{'one norm':>10}: {one_norm:6.2f}")


def cross_products(batch: int, repeats: int) -> None:
    shape = (2 * batch, 62, 62, 3)  # the normals of the image and its flip, inside the one-pixel frame
    a, b = torch.randn(shape, requires_grad=True), torch.randn(shape, requires_grad=True)
    print(f"\ncross product of {shape} (ms forward + backward)")
    grad = torch.ones(shape)
    for name, fn in (("linalg.cross", lambda: torch.linalg.cross(a, b, dim=-1)), ("components", lambda: cross(a, b))):
        print(f"{name:>12}: {median_ms(lambda f=fn: f().backward(grad), repeats):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--nf", type=int, default=16, help="decoder width (the cpu preset's depth_nf/albedo_nf)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    convolutions(args.batch_size, args.nf, 64, args.repeats)
    group_norms(args.batch_size, args.nf, 64, args.repeats)
    optimiser_and_check(args.batch_size, args.repeats)
    cross_products(args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
