import torch

from lowres.augment import build_pipeline
from lowres.augment_preview import save_preview_grid
from lowres.config import SEED_STAGE2_AUGMENT


def test_preview_grid_is_a_png(tmp_path):
    before = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    pipe = build_pipeline(SEED_STAGE2_AUGMENT, [0.5] * 3, [0.2] * 3, 10)
    g = torch.Generator().manual_seed(0)
    afters = [pipe.augment(before, torch.zeros(3, dtype=torch.long), g)[0] for _ in range(2)]
    out = save_preview_grid(before, afters, tmp_path / "grid.png", titles=["a", "b"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
