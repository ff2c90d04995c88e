"""Batched, on-device data augmentation with an independent random draw per sample.

`build_pipeline(spec, mean, std, num_classes)` turns a config list such as
`[{"op": "hflip", "p": 0.5}, {"op": "randaugment", "num_ops": 2}]` into a `Pipeline`;
`validate_spec` checks a spec without building it. All randomness comes from the
`torch.Generator` passed to each call.
"""
from lowres.augment.pipeline import Pipeline, build_pipeline
from lowres.augment.registry import OPS, validate_spec

__all__ = ["OPS", "Pipeline", "build_pipeline", "validate_spec"]
