"""Test-time augmentation: which views of each image are averaged, and how.

- `none`: the plain image.
- `flip`: the plain image and its horizontal flip, averaged.
- `aug`: `views` draws of the run's OWN last-stage augmentation (its saved config's
  `stages[-1].augment`, normalised with the checkpoint's mean/std), averaged, then blended
  with the plain view: `beta * plain + (1 - beta) * mean(views)` (fastai's
  `Learner.tta(beta=...)`: `torch.lerp(aug, plain, beta)`).
- `aug+flip`: as `aug`, the plain part being the `flip` average.

Everything is averaged in probability space. The views are drawn on the model's device,
a whole batch per view, by the batched augmentation pipeline (lowres.augment). Each view
has its own torch.Generator seeded from (`seed`, view number), so a prediction is
reproducible on the same machine, and adding views keeps the first ones (4 views are the
first 4 of 8).

Left out at test time, whatever the run trained with (`NOT_AT_TEST_TIME`): the
sample-mixing ops (mixup, cutmix, mixup_cutmix: they blend two images and their labels;
every `Op.mixes` op) and `erasing` (it blanks up to a third of the image: a regulariser that
hides evidence, not another view of the same object). A `random_choice` keeps its other
sub-ops (and their weights).

To add a mode: a name in `TTA_MODES` and its views in `AugmentedViews.__call__` (or, for a
view set without the augmentation, in `make_views`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from lowres.augment import OPS, build_pipeline
from lowres.errors import LowresError

TTA_MODES = ("auto", "none", "flip", "aug", "aug+flip")
AUG_MODES = ("aug", "aug+flip")
# auto: `aug` for a run whose last stage has test-time augmentation, else `none` (a run
# trained without augmentation has no views it knows). Chosen by measurement
# (benchmarks/tta.py; README "Predict and evaluate").
DEFAULT_TTA = "auto"
# 4 views, plain weight 0.25 (fastai's defaults too): +0.9 points on 2 tiny40 runs (+1.0,
# +0.8; flip +1.4, +0.2), at 5 passes per image; 8 or 16 views gained no more (README).
DEFAULT_VIEWS = 4
DEFAULT_BETA = 0.25  # weight of the plain view (fastai's default beta)
SEED = 0
# Ops a test-time view never uses, with why (the sample mixers are found by `Op.mixes`).
NOT_AT_TEST_TIME = {"erasing": "it blanks part of the image: it hides evidence, it is not a view"}
# At most this many images (views x batch) go through the model at once.
MAX_FORWARD_FACTOR = 4


@dataclass(frozen=True)
class TTA:
    """A test-time augmentation setting: the mode, and for the aug modes the number of
    augmented views, the weight of the plain view and the seed of the draws."""

    mode: str = "none"
    views: int = DEFAULT_VIEWS
    beta: float = DEFAULT_BETA
    seed: int = SEED

    @property
    def augments(self) -> bool:
        return self.mode in AUG_MODES or self.mode == "auto"

    def describe(self) -> str:
        if not self.augments:
            return self.mode
        return f"{self.mode} ({self.views} views, plain weight {self.beta:g})"

    def __str__(self) -> str:
        return self.describe()


def tta_setting(mode: str | TTA | None = None, views: int | None = None,
                beta: float | None = None) -> TTA:
    """A checked TTA; every problem is one LowresError line. `mode` None: the default."""
    if isinstance(mode, TTA):
        setting = mode
    else:
        mode = DEFAULT_TTA if mode is None else mode
        if mode not in TTA_MODES:
            raise LowresError(f"--tta {mode!r} is not one of {', '.join(TTA_MODES)}")
        setting = TTA(mode)
    if views is not None or beta is not None:
        if not setting.augments:
            raise LowresError(f"--tta-views and --tta-beta apply to --tta {' / '.join(AUG_MODES)}, "
                              f"not to --tta {setting.mode}")
        setting = replace(setting, views=setting.views if views is None else views,
                          beta=setting.beta if beta is None else beta)
    if setting.augments:
        if isinstance(setting.views, bool) or not isinstance(setting.views, int) or setting.views < 1:
            raise LowresError(f"--tta-views must be a whole number of at least 1, got {setting.views!r}")
        if not 0.0 <= float(setting.beta) <= 1.0:
            raise LowresError(f"--tta-beta (the plain view's weight) must be in [0, 1], got {setting.beta!r}")
    return setting


def for_run(tta: TTA, cfg, run_dir: Any) -> TTA:
    """`tta` for one run: `auto` becomes `aug` or `none`; an aug mode the run cannot make is
    one LowresError line."""
    if tta.mode == "auto":
        kept, _ = views_spec(list(cfg.stages[-1].augment or []))
        return replace(tta, mode="aug" if kept else "none")
    if tta.augments:
        augmentation_spec(cfg, run_dir, tta.mode)
    return tta


def views_spec(spec: list[dict]) -> tuple[list[dict], list[str]]:
    """The augmentation spec without the ops a test-time view never uses, and their names."""
    kept: list[dict] = []
    dropped: list[str] = []
    for entry in spec:
        name = entry.get("op") if isinstance(entry, dict) else None
        cls = OPS.get(name)
        if name in NOT_AT_TEST_TIME or (cls is not None and cls.mixes):
            dropped.append(name)
            continue
        if name == "random_choice" and isinstance(entry.get("ops"), list):
            weights = entry.get("weights")
            pairs = []
            for i, op in enumerate(entry["ops"]):
                sub, sub_dropped = views_spec([op])
                dropped += sub_dropped
                if sub:
                    pairs.append((sub[0], None if weights is None else weights[i]))
            if not pairs or (weights is not None and sum(w for _, w in pairs) <= 0):
                continue
            entry = dict(entry, ops=[op for op, _ in pairs])
            if weights is not None:
                entry["weights"] = [w for _, w in pairs]
        kept.append(entry)
    return kept, dropped


def augmentation_spec(cfg, run_dir: Any, mode: str = "aug") -> list[dict]:
    """The run's last-stage augmentation without the test-time exclusions, or one
    LowresError line saying why the run has none."""
    stage = cfg.stages[-1]
    spec = list(stage.augment or [])
    kept, dropped = views_spec(spec)
    if not kept:
        why = ("has no augmentation" if not spec else
               f"has only {', '.join(sorted(set(dropped)))}, which test-time views leave out")
        label = f"stages.{len(cfg.stages) - 1}" + (f", {stage.name}" if stage.name else "")
        raise LowresError(f"--tta {mode}: {run_dir}'s last stage ({label}) {why} to draw "
                          f"views from; use --tta flip")
    return kept


def augmentation_for(cfg, mean, std, num_classes: int, run_dir: Any, mode: str = "aug") -> Any:
    """The run's last-stage augmentation as a test-time pipeline (see augmentation_spec)."""
    return build_pipeline(augmentation_spec(cfg, run_dir, mode), mean, std, num_classes)


class AugmentedViews:
    """`views(x_u8, forward) -> probabilities [B, K]` for Engine.logits: the plain (or flip)
    part blended with the mean of the augmented views. `keep=True` also keeps every batch's
    per-view probabilities (`stacks`: [1 + views, B, K], plain part first) for measurements."""

    def __init__(self, tta: TTA, plain, augmentation, device: torch.device, batch_size: int,
                 keep: bool = False) -> None:
        self.tta = tta  # resolved: aug or aug+flip
        self.plain = plain  # normalisation only
        self.augmentation = augmentation
        self.generators = [torch.Generator(device=device).manual_seed(tta.seed * 1_000_003 + v)
                           for v in range(tta.views)]
        self.max_images = max(1, MAX_FORWARD_FACTOR * batch_size)
        self.keep = keep
        self.stacks: list[torch.Tensor] = []

    def view_probabilities(self, x_u8: torch.Tensor,
                           forward: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """[1 + views, B, K]: the plain part, then each augmented view."""
        x = self.plain.normalize(x_u8)
        plain = forward(x).softmax(1)
        if self.tta.mode == "aug+flip":
            plain = (plain + forward(torch.flip(x, dims=[3])).softmax(1)) / 2
        out = [plain]
        labels = torch.zeros(len(x_u8), dtype=torch.int64, device=x_u8.device)
        per_pass = max(1, self.max_images // max(1, len(x_u8)))
        for first in range(0, self.tta.views, per_pass):
            group = self.generators[first:first + per_pass]
            batch = torch.cat([self.augmentation(x_u8, labels, g)[0] for g in group])
            out += list(forward(batch).softmax(1).split(len(x_u8)))
        return torch.stack(out)

    def __call__(self, x_u8: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        stack = self.view_probabilities(x_u8, forward)
        if self.keep:
            self.stacks.append(stack.cpu())
        return blend(stack[0], stack[1:].mean(0), self.tta.beta)


def blend(plain: torch.Tensor, augmented: torch.Tensor, beta: float) -> torch.Tensor:
    """beta * plain + (1 - beta) * augmented (fastai: torch.lerp(augmented, plain, beta))."""
    return torch.lerp(augmented, plain, float(beta))


def make_views(tta: TTA, cfg, pipeline, device: torch.device, batch_size: int, run_dir: Any,
               keep: bool = False) -> AugmentedViews | None:
    """The `views` callable for Engine.logits, or None for the modes Engine.logits does
    itself (none, flip). `pipeline` is the run's normalisation (checkpoint mean/std)."""
    tta = for_run(tta, cfg, run_dir)
    if not tta.augments:
        return None
    augmentation = augmentation_for(cfg, pipeline.mean, pipeline.std, pipeline.num_classes,
                                    run_dir, tta.mode)
    return AugmentedViews(tta, pipeline, augmentation, device, batch_size, keep)
