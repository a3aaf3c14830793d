"""Fixtures shared by the test suite."""

import pytest
import torch

from samem.model import build_model


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op torch thread: two cores shared with other jobs make OpenMP threads stall."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    """The tiny SAM 2 config with seeded random weights (fast, for mechanics and equivalence)."""
    return build_model("samem_tiny", "cpu", seed=0)
