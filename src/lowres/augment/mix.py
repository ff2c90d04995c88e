"""MixUp and CutMix on a batch: each sample is mixed with its neighbour in the batch
(the batch rolled by one, as torchvision does; the loader shuffles batches), and the
labels become soft targets [B, num_classes]. Lambda is drawn once per batch (torchvision)
or, with per_sample: true, once per sample."""
from __future__ import annotations

import torch
from torch import Tensor

from lowres.augment import filter_ops, sampling
from lowres.augment.base import Op
from lowres.basics.checks import Param, boolean, fail, number, probability


class MixOp(Op):
    """A mix op: `mix(images, labels, generator) -> (images, soft targets)`. A sample is
    CutMix rather than MixUp with probability `switch_prob` (a parameter or a constant)."""
    mixes = True
    switch_prob: float

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        raise TypeError(f"{self.name} needs labels: call mix(images, labels, generator)")

    def mix(self, images: Tensor, labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        b, _, h, w = images.shape
        n = b if self.per_sample else 1
        # Drawn even when switch_prob is 0 or 1: every mix op uses the same randomness.
        use_cutmix = sampling.coin(generator, n, self.switch_prob)
        applied = sampling.coin(generator, n, self.p)
        mix_lam = sampling.beta(generator, n, self._alpha("mixup"))
        cut_lam = sampling.beta(generator, n, self._alpha("cutmix"))
        centre_y = sampling.integers(generator, n, 0, h)
        centre_x = sampling.integers(generator, n, 0, w)
        if not self.per_sample:  # one draw for the whole batch
            use_cutmix, applied, mix_lam, cut_lam, centre_y, centre_x = (
                t.expand(b) for t in (use_cutmix, applied, mix_lam, cut_lam, centre_y, centre_x))
        # CutMix box as torchvision computes it: half-sides int(0.5 * sqrt(1 - lam) * side),
        # clipped to the image; lambda is then corrected to the pasted area.
        radius = 0.5 * torch.sqrt(1.0 - cut_lam)
        half_h, half_w = (radius * h).long(), (radius * w).long()
        y1, y2 = (centre_y - half_h).clamp(min=0), (centre_y + half_h).clamp(max=h)
        x1, x2 = (centre_x - half_w).clamp(min=0), (centre_x + half_w).clamp(max=w)
        box_lam = 1.0 - ((y2 - y1) * (x2 - x1)).to(torch.float32) / (h * w)
        # Samples that are not mixed keep lambda 1 (and an empty box).
        cut = applied & use_cutmix
        mixup = applied & ~use_cutmix
        lam = torch.where(cut, box_lam, torch.where(mixup, mix_lam, torch.ones_like(mix_lam)))
        box = torch.stack([y1, torch.where(cut, y2, y1), x1, x2], 1)
        return mix_batch(images, labels, lam, mixup, box, self.context.num_classes)

    def _alpha(self, kind: str) -> float:
        raise NotImplementedError


def mix_batch(images: Tensor, labels: Tensor, lam: Tensor, blend: Tensor, box: Tensor,
              num_classes: int) -> tuple[Tensor, Tensor]:
    """Mix sample i with sample i-1 (the batch rolled by one), with explicit parameters.

    lam [B]: weight of the sample's own label; blend [B] bool: MixUp (blend the images with
    lam) where True, else CutMix (paste the partner's pixels inside box [B, 4] = (y1, y2,
    x1, x2), with lam already the uncovered fraction). Returns images and soft targets.
    """
    b, _, h, w = images.shape
    partner = images.roll(1, 0)
    lam_img = lam.to(images.dtype).reshape(-1, 1, 1, 1)
    blended = images * lam_img + partner * (1.0 - lam_img)
    y1, y2, x1, x2 = box.unbind(1)
    inside = filter_ops.box_mask(h, w, y1, x1, y2 - y1, x2 - x1)
    pasted = torch.where(inside, partner, images)
    out = torch.where(blend.reshape(-1, 1, 1, 1), blended, pasted)
    # zeros + scatter rather than F.one_hot, whose range checks read the labels on the host
    target = torch.zeros(labels.shape[0], num_classes, device=labels.device).scatter_(
        1, labels.long().unsqueeze(1), 1.0)
    lam_t = lam.to(torch.float32).unsqueeze(1)
    return out, target * lam_t + target.roll(1, 0) * (1.0 - lam_t)


_ALPHA = number(0.0, low_open=True)
_PER_SAMPLE = Param(False, boolean, "draw lambda (and box) per sample instead of per batch")


class MixUp(MixOp):
    name = "mixup"
    PARAMS = {"alpha": Param(1.0, _ALPHA, "Beta(alpha, alpha) for lambda"),
              "p": Param(1.0, probability, "probability of mixing"),
              "per_sample": _PER_SAMPLE}
    switch_prob = 0.0  # never CutMix

    def _alpha(self, kind):
        return self.alpha


class CutMix(MixUp):
    """MixUp's parameters, always CutMix."""
    name = "cutmix"
    switch_prob = 1.0


class MixUpCutMix(MixOp):
    """Either MixUp or CutMix; CutMix with probability switch_prob (timm's convention)."""
    name = "mixup_cutmix"
    PARAMS = {"mixup_alpha": Param(0.8, _ALPHA, "Beta parameter for MixUp"),
              "cutmix_alpha": Param(1.0, _ALPHA, "Beta parameter for CutMix"),
              "switch_prob": Param(0.5, probability, "probability of CutMix instead of MixUp"),
              "p": Param(1.0, probability, "probability of mixing"),
              "per_sample": _PER_SAMPLE}

    def _alpha(self, kind):
        return self.mixup_alpha if kind == "mixup" else self.cutmix_alpha


def check_num_classes(num_classes: int, key: str) -> None:
    if num_classes < 2:
        raise fail(key, f"mixing needs num_classes >= 2, got {num_classes}")


