"""Running auto-augment ops drawn per sample (rows of `auto_ops`): each sample draws its
op and signed magnitude; then each photometric op runs once, on the samples that drew it,
and all geometric ops run together as one affine warp. Nothing here names an op: the
table says what each does."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from lowres.augment import geometry_ops, sampling
from lowres.augment.auto_ops import AFFINE_PARTS, AutoOp
from lowres.augment.base import apply_grouped_rounds, constant, masking_mode

Ops = tuple[AutoOp, ...]


def _names(ops: Ops) -> tuple[str, ...]:
    """Cache keys name the op list (its rows hold functions)."""
    return tuple(op.name for op in ops)


_TABLES: dict[tuple, tuple[Tensor, Tensor]] = {}


def _tables(policy: str, ops: Ops, bins: int, height: int, width: int,
            device: torch.device) -> tuple[Tensor, Tensor]:
    """Magnitudes [ops, bins] (float64) and signedness [ops] for a policy, cached."""
    key = (policy, _names(ops), bins, height, width, str(device))
    if key not in _TABLES:
        rows = []
        for op in ops:
            table = op.magnitude_table(policy, bins, height, width)
            rows.append(torch.zeros(bins) if table is None else table.to(torch.float32))
        _TABLES[key] = (torch.stack(rows).to(device=device, dtype=torch.float64),
                        torch.tensor([op.signed for op in ops], device=device))
    return _TABLES[key]


def draw_magnitudes(generator: torch.Generator, policy: str, ops: Ops, op_index: Tensor,
                    bin_index: Tensor, bins: int, height: int, width: int) -> Tensor:
    """Signed magnitude [B] (float64) for each sample's op and bin. Draws one coin per
    sample for the sign, signed op or not: the randomness used depends only on B."""
    table, signed = _tables(policy, ops, bins, height, width, generator.device)
    value = table[op_index.clamp(min=0), bin_index]
    negative = sampling.coin(generator, op_index.shape[0], 0.5) & signed[op_index.clamp(min=0)]
    return torch.where(negative, -value, value)


def geometric_matrices(ops: Ops, op_index: Tensor, magnitude: Tensor, height: int,
                       width: int) -> Tensor:
    """Inverse affine matrices [n, 2, 3] for samples that each drew one of the geometric
    ops (others get the identity): all are special cases of torchvision's affine, so they
    share one warp. Each sample's parameters come from its op's row."""
    f64 = torch.float64
    signed = magnitude.to(f64)
    zero = torch.zeros_like(magnitude, dtype=f64)
    parts = dict.fromkeys(AFFINE_PARTS, zero)
    corner = torch.zeros_like(op_index, dtype=torch.bool)
    for k, op in enumerate(ops):
        if op.affine is None:
            continue
        drew = op_index == k
        for key, value in op.affine(signed).items():
            parts[key] = torch.where(drew, value, parts[key])
        if op.about_corner:
            corner = corner | drew
    center = corner.to(f64).unsqueeze(1) * constant((-width * 0.5, -height * 0.5),
                                                    magnitude.device, f64)
    return geometry_ops.inverse_affine_matrix(
        parts["angle"], torch.stack([parts["shift_x"], parts["shift_y"]], 1),
        torch.ones_like(zero), torch.stack([parts["shear_x"], parts["shear_y"]], 1), center)


def _is_geometric(ops: Ops, op_index: Tensor) -> Tensor:
    """[n] bool: the sample drew a geometric op (a table lookup: no isin)."""
    flags = constant(tuple(float(op.geometric) for op in ops) + (0.0,), op_index.device)
    return flags[torch.where(op_index < 0, len(ops), op_index)] > 0


# Source maps of the nearest-neighbour warp per (op names, image size, op, magnitude):
# policies draw few distinct geometric ops (RandAugment: 10 per magnitude, TrivialAugment:
# at most 310), so on CPU each is computed once and then looked up.
_SOURCES: dict[tuple, Tensor] = {}
_SOURCES_LIMIT = 1 << 22  # index entries kept (int64: 32 MB); the cache starts over beyond


def geometric_sources(ops: Ops, op_index: Tensor, magnitude: Tensor, height: int,
                      width: int) -> Tensor:
    """Flat source index [n, H*W] of the nearest-neighbour warp (see
    `geometry_ops.nearest_sources`) for samples that drew geometric ops, from a cache keyed
    by (op, magnitude) read on the host: CPU only (subset mode)."""
    keys = list(zip(op_index.tolist(), magnitude.tolist()))
    slots: dict[tuple, int] = {}
    which = [slots.setdefault(k, len(slots)) for k in keys]
    prefix = (_names(ops), height, width)
    missing = [k for k in slots if prefix + k not in _SOURCES]
    if missing:
        if (len(_SOURCES) + len(missing)) * height * width > _SOURCES_LIMIT:
            _SOURCES.clear()
        index = torch.tensor([k[0] for k in missing], dtype=op_index.dtype, device=op_index.device)
        mags = torch.tensor([k[1] for k in missing], dtype=magnitude.dtype, device=magnitude.device)
        matrix = geometric_matrices(ops, index, mags, height, width)
        for k, row in zip(missing, geometry_ops.nearest_sources(matrix, height, width)):
            _SOURCES[prefix + k] = row
    table = torch.stack([_SOURCES[prefix + k] for k in slots])
    return table.index_select(0, torch.tensor(which, device=table.device))


def _warp_geometric(x: Tensor, op_index: Tensor, magnitude: Tensor, ops: Ops,
                    interpolation: str, fill: tuple[float, ...] | None,
                    inplace: bool = False) -> Tensor:
    """The samples x that drew geometric ops, each warped by its op (one warp for all)."""
    _, _, h, w = x.shape
    if interpolation == "nearest" and masking_mode(x.device) == "subset" and x.shape[0] > 0:
        return geometry_ops.warp_nearest_from(
            x, geometric_sources(ops, op_index, magnitude, h, w), fill, inplace)
    return geometry_ops.warp(x, geometric_matrices(ops, op_index, magnitude, h, w),
                             interpolation, fill)


GroupFns = dict[int, Callable[[Tensor, Any], Tensor]]


def drawn_ops_round(op_index: Tensor, magnitude: Tensor, ops: Ops, interpolation: str,
                    fill: tuple[float, ...] | None, mode: str) -> tuple[Tensor, GroupFns]:
    """(group, fns) for `apply_grouped_rounds`: sample i gets ops[op_index[i]] with
    magnitude[i]; op_index -1 means nothing. Every sample draws one op, so the ops touch
    disjoint samples and their order does not matter; the geometric ops are done together
    in one warp; ops with neither pixels nor affine (Identity) leave their samples alone.
    In subset mode the functions overwrite the views they get."""
    inplace = mode == "subset"
    group = torch.where(_is_geometric(ops, op_index), -2, op_index)  # -2: one warp for all

    def pick(values: Tensor, idx) -> Tensor:  # index_select: cheaper than values[idx]
        return values if isinstance(idx, slice) else values.index_select(0, idx)

    fns: GroupFns = {-2: lambda x, idx: _warp_geometric(
        x, pick(op_index, idx), pick(magnitude, idx), ops, interpolation, fill, inplace)}
    for k, op in enumerate(ops):
        if op.pixels is not None:
            fns[k] = lambda x, idx, fn=op.pixels: fn(x, pick(magnitude, idx), inplace)
    return group, fns


def apply_drawn_ops(images: Tensor, op_index: Tensor, magnitude: Tensor, ops: Ops,
                    interpolation: str, fill: tuple[float, ...] | None) -> Tensor:
    """Sample i gets ops[op_index[i]] with magnitude[i]; op_index -1 means nothing (see
    `drawn_ops_round`). May overwrite `images`."""
    mode = masking_mode(images.device)
    return apply_grouped_rounds(
        images, [drawn_ops_round(op_index, magnitude, ops, interpolation, fill, mode)], mode)
