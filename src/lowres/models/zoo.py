"""The model registry: name -> builder, plus `build_model`, `describe_models`.

Every model is built the same way: the network from its family module, then the
configured head in place of its classifier (`heads.py`), then the configured init over
the whole model (`init.py`). No pretrained weights are ever loaded.

Options that do not apply to a model: never silently ignored. An option is honoured,
honoured under a documented reinterpretation, or refused with a ConfigError:
* `stem`: literal (first conv k4 / k3 / imagenet) for the ResNets, the small nets and
  efficientnet_b7; swin_t has no conv stem and maps k4 and k3 to its low-res patch
  embedding (patch 2) and imagenet to torchvision's (patch 4). See adapted.py.
* `drop_path`: per-sample stochastic depth on residual branches; refused (> 0) for
  cnn_small, which has none.
* `head`, `head_hidden`, `dropout`, `init`: apply to every model (`head_hidden` is only
  read by the mlp head).
* `timm:<name>`: any timm model (optional extra), adapted to small inputs in
  `timm_models.py`; `dropout` and `drop_path` become timm's drop_rate and drop_path_rate;
  `init: torchvision` ("the builder's own") keeps timm's own initialisation.
* The CIFAR classics (`cifar.py`: WRN-d-k, PreAct ResNet-18) take `stem` literally too;
  their published 3x3 stride-1 stem is `stem: k3`, the shape `lowres models` describes.

To add a model: write its builder in a family module and register it in `_REGISTRY`;
nothing in the config changes (the zoo checks model.name against this registry). The
stem, head and init names are the family modules' own tables (stems.STEMS,
heads.HEADS, init.INITS), which the config schema reads; `build_model` puts a
ModelConfig built in code through the same schema checks.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lowres.basics.compat import set_submodule
from lowres.config import ModelConfig, checked
from lowres.errors import ConfigError, did_you_mean
from lowres.models.adapted import build_efficientnet_b7, build_swin_t
from lowres.models.cifar import CIFAR_NETS, build_cifar_net
from lowres.models.heads import make_head
from lowres.models.init import apply_init
from lowres.models.resnets import RESNETS, build_resnet, set_drop_path
from lowres.models.small import SMALL
from lowres.models import timm_models

# A builder takes (stem, in_channels, drop_path, image_size) and returns
# (model, pooled feature count, name of the classifier attribute the head replaces).
Builder = Callable[[str, int, float, int], tuple[nn.Module, int, str]]


def _resnet_builder(name: str) -> Builder:
    def build(stem, in_channels, drop_path, image_size):
        model, features = build_resnet(name, stem, in_channels, drop_path)
        return model, features, "fc"
    return build


def _small_builder(name: str) -> Builder:
    def build(stem, in_channels, drop_path, image_size):
        model = SMALL[name][0](stem, in_channels)
        set_drop_path(model, drop_path)  # resnet8's blocks; cnn_small has none (refused above)
        return model, model.num_features, "fc"
    return build


def _efficientnet(stem, in_channels, drop_path, image_size):
    model, features = build_efficientnet_b7(stem, in_channels, drop_path)
    return model, features, "classifier"


def _swin(stem, in_channels, drop_path, image_size):
    model, features = build_swin_t(stem, in_channels, drop_path, image_size)
    return model, features, "head"


def _cifar_builder(name: str) -> Builder:
    def build(stem, in_channels, drop_path, image_size):
        model = build_cifar_net(name, stem, in_channels, drop_path)
        return model, model.num_features, "fc"
    return build


# name -> (builder, one-line summary), in the order `lowres models` lists them
_REGISTRY: dict[str, tuple[Builder, str]] = {
    "resnet8": (_small_builder("resnet8"), SMALL["resnet8"][1]),
    "cnn_small": (_small_builder("cnn_small"), SMALL["cnn_small"][1]),
    **{name: (_resnet_builder(name), spec[-1]) for name, spec in RESNETS.items()},
    "efficientnet_b7": (_efficientnet, "torchvision EfficientNet-B7, stem stride 1 for low-res input"),
    "swin_t": (_swin, "torchvision Swin-T, patch 2 and window 5 for low-res input"),
    **{name: (_cifar_builder(name), summary) for name, (_, summary) in CIFAR_NETS.items()},
}
_NO_RESIDUALS = {"cnn_small"}
# The stem `lowres models` describes a model with: its published one where that is not k4.
_DESCRIBE_STEM = {name: "k3" for name in CIFAR_NETS}


def model_names() -> list[str]:
    return list(_REGISTRY)


def build_model(cfg: ModelConfig, num_classes: int, in_channels: int = 3, image_size: int = 40) -> nn.Module:
    """A freshly initialised `cfg.name` mapping [B, in_channels, H, W] to logits [B, num_classes].

    `image_size` only shapes swin_t (its window size); the CNNs pool globally and accept
    any size (the 40x40 feature-map sizes are documented in resnets.py / adapted.py).
    """
    is_timm = cfg.name.startswith(timm_models.PREFIX)
    if not is_timm and cfg.name not in _REGISTRY:
        raise ConfigError(f"config key 'model.name': unknown model '{cfg.name}'"
                          f"{did_you_mean(cfg.name, model_names())}")
    cfg = checked(cfg, "model")  # stem, head, init, dropout, drop_path: the schema's checks
    if cfg.drop_path > 0 and cfg.name in _NO_RESIDUALS:
        raise ConfigError(f"config key 'model.drop_path': {cfg.name} has no residual blocks to drop; "
                          f"set model.drop_path=0 or pick a residual model such as resnet8")
    if cfg.head == "mlp" and cfg.head_hidden < 1:
        raise ConfigError(f"config key 'model.head_hidden': must be at least 1, got {cfg.head_hidden}")
    if num_classes < 1 or in_channels < 1:
        raise ConfigError(f"model needs at least 1 class and 1 input channel, got "
                          f"{num_classes} classes and {in_channels} channels")
    if is_timm:
        model = _build_timm(cfg, num_classes, in_channels, image_size)
    else:
        builder, _ = _REGISTRY[cfg.name]
        model, features, head_attr = builder(cfg.stem, in_channels, cfg.drop_path, image_size)
        setattr(model, head_attr, make_head(cfg.head, features, num_classes, cfg.dropout, cfg.head_hidden))
    if not (is_timm and cfg.init == "torchvision"):  # for timm, "the builder's own" is timm's
        apply_init(model, cfg.init, cfg.name)
    return model


def _build_timm(cfg: ModelConfig, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    name = cfg.name[len(timm_models.PREFIX):]
    model, classifier, _ = timm_models.build_timm(name, cfg.stem, in_channels, num_classes, cfg.dropout,
                                                  cfg.drop_path, image_size, cfg.head)
    if cfg.head == "mlp":  # timm built its own Linear (drop_rate 0); the zoo's MLP takes its place
        old = model.get_submodule(classifier) if classifier else None
        if not isinstance(old, nn.Linear):
            raise ConfigError(f"config key 'model.head': timm model '{name}' has no Linear "
                              f"classifier to replace with the mlp head; use model.head=linear")
        set_submodule(model, classifier, make_head("mlp", old.in_features, num_classes, cfg.dropout,
                                                  cfg.head_hidden))
    return model


def count_parameters(model: nn.Module) -> int:
    """All parameters (trainable or not), counted once even if shared."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, size: int = 40, in_channels: int = 3) -> float:
    """FLOPs of one eval-mode forward of ONE image, as counted by torch's FlopCounterMode:
    convolutions, Linears and matmuls (incl. attention), one multiply-add = 2 FLOPs; norms,
    activations, pooling and additions are not counted. Works on meta-device models."""
    device = next(model.parameters()).device
    x = torch.zeros(1, in_channels, size, size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return float(counter.get_total_flops())


def describe_models(size: int = 40, num_classes: int = 200) -> list[dict]:
    """name, params, gflops (one size x size image, 2 FLOPs per multiply-add, see
    `count_flops`) and a one-line summary for every model with the default config
    (stem k4, linear head). Models are built on the meta device: no memory, no init cost."""
    rows = []
    for name, (_, summary) in _REGISTRY.items():
        with torch.device("meta"):
            model = build_model(ModelConfig(name=name, stem=_DESCRIBE_STEM.get(name, "k4")),
                                num_classes, image_size=size)
        rows.append({"name": name, "params": count_parameters(model),
                     "gflops": count_flops(model, size) / 1e9, "summary": summary})
    return rows


def stem_grid(model: nn.Module, stage: str | None, size: int, in_channels: int = 3) -> str:
    """The feature map entering the first stage (`stage`, a module name) at size x size."""
    if stage is None:
        return "?"
    seen: list[tuple[int, ...]] = []
    hook = model.get_submodule(stage).register_forward_pre_hook(
        lambda _m, args: seen.append(tuple(args[0].shape)) if not seen else None)
    try:
        count_flops(model, size, in_channels)
    finally:
        hook.remove()
    shape = seen[0] if seen else ()
    return f"{shape[-2]}x{shape[-1]}" if len(shape) == 4 else f"{shape[1]} tokens" if len(shape) == 3 else "?"


def describe_timm(pattern: str | None, size: int = 40, num_classes: int = 200,
                  stem: str = "k4"):
    """Yields a row per timm model matching `pattern`: name, params, gflops, the feature map
    after the adapted stem, or `error` when the model cannot be built at this size."""
    for name in timm_models.list_timm(pattern):
        row = {"name": timm_models.PREFIX + name}
        try:
            with torch.device("meta"):
                model = build_model(ModelConfig(name=row["name"], stem=stem, init="default"),
                                    num_classes, image_size=size)
            row.update(params=count_parameters(model), gflops=count_flops(model, size) / 1e9,
                       stem_grid=stem_grid(model, timm_models.first_stage(model), size))
        except Exception as exc:  # noqa: BLE001 - one bad model must not end the listing
            row["error"] = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        yield row
