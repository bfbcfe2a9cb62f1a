"""Shared test fixtures: paths to the reference data in tests/fixtures."""

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SG2ADA = FIXTURES / "stylegan2-ada"


@pytest.fixture(scope="session")
def nvlabs_pickle() -> Path:
    """A real NVlabs stylegan2-ada-pytorch snapshot (32 px, trained 48 iterations)."""
    return SG2ADA / "tiny_sg2ada.pkl"


@pytest.fixture(scope="session")
def nvlabs_ref() -> dict:
    """NVlabs' own outputs for that snapshot (see tests/fixtures/stylegan2-ada/README.md)."""
    with np.load(SG2ADA / "tiny_sg2ada_ref.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def tiny_ckpt(nvlabs_pickle):
    from ganfactory.gan import read_any

    return read_any(nvlabs_pickle)
