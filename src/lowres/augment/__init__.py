"""Batched, on-device data augmentation with an independent random draw per sample.

`build_pipeline(spec, mean, std, num_classes)` turns a config list such as
`[{"op": "hflip", "p": 0.5}, {"op": "randaugment", "num_ops": 2}]` into a `Pipeline`;
`validate_spec` checks a spec without building it. All randomness comes from the
`torch.Generator` passed to each call.
May import: basics and errors only (config, above it, checks specs with this package's tables).
"""
# Importing the modules that define op classes registers their ops in OPS
# (Op.__init_subclass__): a new op in one of them needs nothing else; a new module goes here.
from lowres.augment import basic_ops, mix, policies  # noqa: F401 (imported to register ops)
from lowres.augment.base import OPS
from lowres.augment.pipeline import Pipeline, build_pipeline
from lowres.augment.spec import validate_spec

__all__ = ["OPS", "Pipeline", "build_pipeline", "validate_spec"]
