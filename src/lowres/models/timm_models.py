"""`model.name=timm:<name>`: any timm model, built from scratch and adapted to small images.

timm (an optional extra: pip install 'lowres[timm]') is imported only here and only when a
`timm:` model is asked for. Nothing is downloaded: `pretrained=False` always.

The model is built with the config's `num_classes`, `drop_rate` (= `model.dropout`, the
dropout before timm's classifier) and `drop_path_rate` (= `model.drop_path`). The
adaptation to small inputs follows the seed's ResNet-50 rule (`model.stem` means what it
means for the zoo's ResNets):

* `k4` / `k3`: the first convolution (the stem's, e.g. ResNet's `conv1`, the first conv of
  a ResNet-D deep stem, EfficientNet's `conv_stem`, ConvNeXt's 4x4/4 patchify conv) becomes
  4x4 stride 1 without padding / 3x3 stride 1 padding 1, same output channels; every
  pooling layer before the first stage (ResNet's max-pool, DenseNet's `pool0`) is removed,
  and any later strided conv of the stem (overlapping stems) gets stride 1.
  The first stage is the first entry of timm's `feature_info` with a reduction of 4 or
  more, so strided blocks that belong to a stage (MobileNetV3's first block) are kept.
* `imagenet`: timm's network unchanged.

Per-family overrides where timm differs: vision transformers (a `patch_embed` and no conv
stem to swap) are rebuilt with `img_size` = the image size and, for `k4`/`k3`, a 4x4 patch
(a 10x10 token grid at 40x40, the usual CIFAR ViT setting) instead of 16x16.

With `model.head=mlp` timm's classifier (built with drop_rate 0) is replaced by the zoo's
MLP head, whose Dropout is `model.dropout`.
"""
from __future__ import annotations

from torch import nn

from lowres.basics.compat import set_submodule
from lowres.errors import ConfigError, LowresError

PREFIX = "timm:"
LOWRES_VIT_PATCH = 4
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def import_timm():
    try:
        import timm
    except ImportError:
        raise LowresError("timm models need the timm package: pip install 'lowres[timm]'") from None
    return timm


def check_name(name: str) -> None:
    """Refuse a name timm does not know, suggesting the nearest ones, in one line."""
    timm = import_timm()
    known = timm.list_models()
    if name in known:
        return
    import difflib

    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = (f" (did you mean {', '.join(PREFIX + c for c in close)}?)" if close
            else " (see `lowres models --timm PATTERN`)")
    raise ConfigError(f"config key 'model.name': timm has no model '{name}'{hint}")


def _create(name: str, in_channels: int, num_classes: int, drop_rate: float, drop_path: float,
            **extra) -> nn.Module:
    timm = import_timm()
    kwargs = dict(pretrained=False, num_classes=num_classes, in_chans=in_channels,
                  drop_rate=drop_rate, **extra)
    if drop_path > 0:  # families without stochastic depth refuse the argument even at 0
        kwargs["drop_path_rate"] = drop_path
    try:
        return timm.create_model(name, **kwargs)
    except TypeError as exc:
        what = "model.drop_path" if drop_path > 0 and "drop_path" in str(exc) else "its options"
        raise ConfigError(f"timm model '{name}' does not accept {what} ({exc}); "
                          f"set model.drop_path=0 or pick another timm model") from None


def first_stage(model: nn.Module) -> str | None:
    """Name of the module where the first stage begins (reduction 4 or more), from timm's
    feature_info; None when the model does not describe its stages."""
    info = getattr(model, "feature_info", None)
    if info is None:
        return None
    entries = info.get_dicts() if hasattr(info, "get_dicts") else list(info)
    for entry in entries:
        if entry.get("reduction", 0) >= 4:
            return entry["module"]
    return entries[0]["module"] if entries else None


def _low_res_conv(old: nn.Conv2d, stem: str, in_channels: int) -> nn.Conv2d:
    if stem == "k4":
        return nn.Conv2d(in_channels, old.out_channels, 4, stride=1, padding=0, bias=old.bias is not None)
    return nn.Conv2d(in_channels, old.out_channels, 3, stride=1, padding=1, bias=old.bias is not None)


def adapt_stem(model: nn.Module, stem: str, in_channels: int) -> list[str]:
    """Swap the first conv and remove the pooling before the first stage, in place.
    Returns what was changed (for tests and `lowres models --timm`)."""
    stage = first_stage(model)
    changed: list[str] = []
    conv_done = False
    for name, module in list(model.named_modules()):
        if stage is not None and (name == stage or name.startswith(stage + ".")):
            break
        if not conv_done and isinstance(module, nn.Conv2d):
            set_submodule(model, name, _low_res_conv(module, stem, in_channels))
            changed.append(name)
            conv_done = True
        elif conv_done and isinstance(module, _POOLS) and _stride(module) > 1:
            set_submodule(model, name, nn.Identity())
            changed.append(name)
        elif conv_done and isinstance(module, nn.Conv2d) and max(module.stride) > 1:
            module.stride = (1, 1)  # a second strided stem conv (overlapping stems): same rule
            changed.append(name)
    if not conv_done:
        raise ConfigError("this timm model has no convolution before its first stage to adapt; "
                          "use model.stem=imagenet")
    return changed


def _stride(pool: nn.Module) -> int:
    s = pool.stride if pool.stride is not None else pool.kernel_size
    return s if isinstance(s, int) else max(s)


def build_timm(name: str, stem: str, in_channels: int, num_classes: int, dropout: float,
               drop_path: float, image_size: int, head: str) -> tuple[nn.Module, str | None, int]:
    """The adapted model; returns (model, classifier attribute path or None, features)."""
    check_name(name)
    drop_rate = dropout if head == "linear" else 0.0
    model = _create(name, in_channels, num_classes, drop_rate, drop_path)
    if hasattr(model, "patch_embed"):  # ViT family: rebuild at the image size, small patches
        extra = {"img_size": image_size}
        if stem != "imagenet":
            extra["patch_size"] = LOWRES_VIT_PATCH
        try:
            model = _create(name, in_channels, num_classes, drop_rate, drop_path, **extra)
        except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"timm model '{name}' cannot be built for {image_size}x{image_size} "
                              f"input ({reason}); pick a convolutional timm model") from None
    elif stem != "imagenet":
        adapt_stem(model, stem, in_channels)
    classifier = model.pretrained_cfg.get("classifier") if hasattr(model, "pretrained_cfg") else None
    return model, classifier, int(getattr(model, "num_features", 0))


def list_timm(pattern: str | None) -> list[str]:
    return import_timm().list_models(pattern or "*")
