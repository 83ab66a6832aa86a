"""Fixtures shared by the whole test suite."""

import pytest
import torch


@pytest.fixture(params=["cpu", "cuda"])
def device(request) -> torch.device:
    """Every device the code must run on; the CUDA case is skipped, visibly, where no GPU is present."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    """Both floating-point precisions the geometry and renderer accept."""
    return request.param
