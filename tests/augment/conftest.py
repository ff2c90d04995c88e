import pytest
import torch


@pytest.fixture
def images() -> torch.Tensor:
    """8 random RGB float images 24x24 on uint8 levels (k / 255), as the pipeline sees them."""
    g = torch.Generator().manual_seed(1234)
    return torch.randint(0, 256, (8, 3, 24, 24), generator=g, dtype=torch.uint8).float() / 255.0


@pytest.fixture
def gray_images(images) -> torch.Tensor:
    return images[:, :1].clone()
