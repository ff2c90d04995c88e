"""lowres: train image classifiers from scratch on small images, write submissions.

From Python (notebooks): `lowres.train`, `lowres.resume`, `lowres.predict`,
`lowres.evaluate`, `lowres.load_run`, `lowres.models` (see `lowres.api`). They load on first
use, so `import lowres` (and the CLI) stays light.
"""
import sys
import types

__version__ = "0.1.0"

_API = ("train", "resume", "predict", "evaluate", "load_run", "models", "TrainedRun")
_ERRORS = ("LowresError", "ConfigError", "DataError")
__all__ = list(_API) + list(_ERRORS)


def __getattr__(name: str):
    if name in _API:
        from lowres import api  # noqa: PLC0415

        return getattr(api, name)
    if name in _ERRORS:
        from lowres import errors  # noqa: PLC0415

        return getattr(errors, name)
    raise AttributeError(f"module 'lowres' has no attribute {name!r}")


class _Package(types.ModuleType):
    """`lowres.train`, `lowres.predict` and `lowres.models` are API functions and also the
    names of sub-packages. Importing a sub-package normally binds it as an attribute of the
    parent, which would hide the function; this keeps the function. The sub-packages stay
    importable as usual (`from lowres.train.loop import train` reads sys.modules)."""

    def __setattr__(self, name, value):
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
