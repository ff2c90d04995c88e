import pytest
import torch

from lowres.augment import build_pipeline
from lowres.cli.augment_preview import save_preview_grid
from lowres.config import SEED_STAGE2_AUGMENT


def test_preview_grid_is_a_png(tmp_path):
    before = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    pipe = build_pipeline(SEED_STAGE2_AUGMENT, [0.5] * 3, [0.2] * 3, 10)
    g = torch.Generator().manual_seed(0)
    afters = [pipe.augment(before, torch.zeros(3, dtype=torch.long), g)[0] for _ in range(2)]
    out = save_preview_grid(before, afters, tmp_path / "grid.png", titles=["a", "b"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_draw_column_has_its_own_title(tmp_path, monkeypatch):
    """The first column is always 'original'; titles name the draws only, one each (the
    command used to pass 'original' again, shifting every label one column right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.axes

    before = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    afters = [before.float() / 255] * 2
    shown = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, text, *a, **k: shown.append(text) or real(self, text, *a, **k))
    save_preview_grid(before, afters, tmp_path / "grid.png", titles=["s1 draw 1", "s1 draw 2"])
    assert shown == ["original", "s1 draw 1", "s1 draw 2"]
    with pytest.raises(ValueError, match="3 titles for 2 draws"):
        save_preview_grid(before, afters, tmp_path / "x.png", titles=["original", "a", "b"])
