"""What every augmentation op shares: its parameter table, the build context, the split
of each op into draw (all random numbers for the batch, first) and apply (no randomness),
and `apply_masked`, which runs an operation on the samples that drew it: on a gathered
subset on CPU, on the whole batch blended with torch.where on accelerators (no
data-dependent shapes, hence no device-to-host synchronisation)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

import torch
from torch import Tensor

from lowres.basics.checks import Param


@dataclass(frozen=True)
class Context:
    """Dataset facts some ops need (erasing with the mean colour, soft targets)."""
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    num_classes: int = 0


# Config name -> op class. Filled by defining the classes (Op.__init_subclass__): an op
# needs no list to be kept by hand; the package's __init__ imports the modules that define them.
OPS: dict[str, type[Op]] = {}


class Op:
    """An image op: float images [B, C, H, W] in 0..1 -> augmented images, same shape.

    An op may overwrite the tensor it is given (the pipeline owns it: a fresh float copy
    of the input batch), which saves a full copy of the batch per op.

    Subclasses set `name` (the config spelling) and `PARAMS`; a subclass that sets its own
    `name` is registered in OPS as it is defined (bases without one are not). spec.py
    validates the config values and passes them, normalised, as keyword arguments.
    """

    name: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Param]] = {}
    mixes: ClassVar[bool] = False  # True for ops that also turn labels into soft targets

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if not name:
            return
        known = OPS.get(name)
        # The same class defined again (a reloaded module) replaces itself; a second op
        # under one config name would make configs ambiguous.
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__,
                                                                           cls.__qualname__):
            raise TypeError(f"augmentation op name {name!r} is taken by "
                            f"{known.__module__}.{known.__qualname__}")
        OPS[name] = cls

    def __init__(self, context: Context, **params: Any) -> None:
        self.context = context
        self.params = params
        for key, value in params.items():
            setattr(self, key, value)

    @classmethod
    def check_combination(cls, key: str, params: dict[str, Any]) -> None:
        """Checks that involve several parameters; `key` names the op's config entry."""

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        return self.apply(images, self.draw(generator, tuple(images.shape)))

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        """Every random draw for a batch of `shape` [B, C, H, W], taken up front: tensors
        with a leading batch dimension (or lists of such draws, for ops made of ops)."""
        raise NotImplementedError

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        """Apply the op with the draws of `draw`; `mask` [B] bool (from an enclosing op such
        as random_choice) limits it to some samples. Draws no random numbers."""
        raise NotImplementedError

    def describe(self) -> str:
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.params.items())
        return f"{self.name}({shown})"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, list):
        return "[" + ", ".join(v.describe() if isinstance(v, Op) else _show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


# How an op reaches the samples that drew it (see `apply_masked`): "subset" gathers them,
# "where" computes the whole batch and blends. None: "where" on accelerators, where a
# data-dependent subset size would cost a device-to-host synchronisation, else "subset".
# Training chooses through the device policy (train.augment_masking) with `forced_masking`.
MASKING_MODES = ("subset", "where")
_forced_mode: str | None = None


def masking_mode(device: torch.device) -> str:
    if _forced_mode is not None:
        return _forced_mode
    return "subset" if device.type == "cpu" else "where"


@contextmanager
def forced_masking(mode: str | None) -> Iterator[None]:
    """Run the ops with `mode` ("subset" / "where", None: by device) within the block."""
    global _forced_mode
    if mode is not None and mode not in MASKING_MODES:
        raise ValueError(f"masking mode must be one of {MASKING_MODES}, got {mode!r}")
    previous, _forced_mode = _forced_mode, mode
    try:
        yield
    finally:
        _forced_mode = previous


def apply_masked(images: Tensor, selected: Tensor, fn: Callable[[Tensor, Any], Tensor],
                 mode: str | None = None) -> Tensor:
    """Samples where `selected` ([B] bool) is True get fn(images[idx], idx); the others
    stay as they are. `fn` must not modify its argument and must treat samples
    independently; it indexes its per-sample parameters with `idx`.

    subset: idx is the index tensor of the selected samples; they are gathered, and the
    results written back into `images` (in place). Cheapest on CPU, but the subset size
    depends on the data (nonzero), which on CUDA means a device-to-host synchronisation.
    where: idx is slice(None): fn runs on the whole batch and torch.where picks per sample;
    fixed shapes, no synchronisation, the same numbers (the ops are elementwise or reduce
    within a sample). `mode` None: see `masking_mode`."""
    if (mode or masking_mode(images.device)) == "where":
        return torch.where(selected.reshape(-1, 1, 1, 1), fn(images, slice(None)), images)
    index = selected.nonzero().squeeze(1)
    if index.numel() == 0:
        return images
    if index.numel() == images.shape[0]:
        return fn(images, slice(None))
    return images.index_copy_(0, index, fn(images.index_select(0, index), index))


def apply_grouped(images: Tensor, group: Tensor, fns: dict[int, Callable[[Tensor, Any], Tensor]],
                  mode: str | None = None) -> Tensor:
    """Samples with group[i] == k get fns[k](images[idx], idx), as `apply_masked` for each
    k; samples of groups without a function (any other value) stay as they are. May
    overwrite `images`.

    subset: one stable sort by group, one gather of the batch, each function on its run
    of contiguous samples (a view of that private copy: a function may write its result
    into it and return it, which saves a copy), one gather back: two copies of the batch
    instead of a gather and a scatter per group. The run lengths are read on the host
    (CPU only). where: each function on the whole batch, blended with torch.where (there
    the functions must not modify their argument)."""
    return apply_grouped_rounds(images, [(group, fns)], mode)


def apply_grouped_rounds(images: Tensor,
                         rounds: list[tuple[Tensor, dict[int, Callable[[Tensor, Any], Tensor]]]],
                         mode: str | None = None) -> Tensor:
    """`apply_grouped` for each (group, fns) of `rounds` in turn. In subset mode the batch
    stays in the sorted order of one round until the next: one gather per round plus one
    back at the end, instead of two per round."""
    if (mode or masking_mode(images.device)) == "where":
        for group, fns in rounds:
            for k, fn in fns.items():
                images = apply_masked(images, group == k, fn, "where")
        return images
    x = images
    position = None  # position[i]: where sample i is in x (None: x is in batch order)
    for group, fns in rounds:
        keys = list(fns)
        # rank: the position of the sample's group in `keys`; len(keys) for groups without
        # a function (they sort last). One comparison against all keys at once.
        hits = group.unsqueeze(1) == constant(tuple(keys), group.device, group.dtype)
        rank = torch.cat([hits, hits.new_ones(group.shape[0], 1)], 1).to(torch.int8).argmax(1)
        counts = torch.bincount(rank, minlength=len(keys) + 1).tolist()
        if counts[-1] == group.numel():
            continue
        order = torch.argsort(rank, stable=True)
        x = x.index_select(0, order if position is None else position.index_select(0, order))
        start = 0
        for k, count in zip(keys, counts):
            if count:
                part = x[start:start + count]
                result = fns[k](part, order[start:start + count])
                if result is not part:
                    part.copy_(result)
            start += count
        position = torch.argsort(order)
    return x if position is None else x.index_select(0, position)


def combine(selected: Tensor, mask: Tensor | None) -> Tensor:
    """An op's own selection restricted to `mask` (the samples an enclosing op gives it)."""
    return selected if mask is None else selected & mask


_CONSTANTS: dict[tuple, Tensor] = {}


def constant(values: tuple[float, ...], device: torch.device,
             dtype: torch.dtype = torch.float32) -> Tensor:
    """A small constant tensor on `device`, made once: copying host data to a CUDA device
    synchronises, so none is made per batch."""
    key = (values, str(device), dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=dtype).to(device)
    return _CONSTANTS[key]
