"""lowres: train image classifiers from scratch on small images, write submissions.

From Python (notebooks): `lowres.train`, `lowres.resume`, `lowres.predict`,
`lowres.evaluate`, `lowres.load_run`, `lowres.models`, `lowres.tune`, `lowres.lr_find` (see
`lowres.api`, which imports nothing heavy until a function runs, so `import lowres` and the
CLI stay light).
"""
import functools
import importlib
import sys
import types

from lowres import api
from lowres.errors import ConfigError, DataError, LowresError


def __getattr__(name: str):
    # `lowres.__version__` is read from the installed distribution on first use, not at
    # import: importlib.metadata costs about as much as the rest of `import lowres`.
    if name == "__version__":
        from lowres.run.environment import lowres_version

        return lowres_version()
    raise AttributeError(f"module 'lowres' has no attribute {name!r}")


class _ApiEntry:
    """`lowres.train`, `lowres.predict` and `lowres.models` are API functions and also the
    names of sub-packages. This is the function (same call, signature and docstring) and,
    for attribute lookups, the sub-package: `lowres.train.loop` still names the module, so
    `import lowres.train.loop as loop`, mock.patch and monkeypatch string paths work."""

    def __init__(self, name: str) -> None:
        self._name = name
        functools.update_wrapper(self, getattr(api, name))

    def __call__(self, *args, **kwargs):
        return self.__wrapped__(*args, **kwargs)

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        module = importlib.import_module(f"lowres.{self._name}")
        try:
            return getattr(module, attr)
        except AttributeError:
            return importlib.import_module(f"lowres.{self._name}.{attr}")

    def __setattr__(self, attr: str, value) -> None:
        if attr.startswith("_") or attr in functools.WRAPPER_ASSIGNMENTS:
            object.__setattr__(self, attr, value)
        else:  # monkeypatch.setattr("lowres.train.loop", ...) patches the sub-package
            setattr(importlib.import_module(f"lowres.{self._name}"), attr, value)

    def __repr__(self) -> str:
        return repr(self.__wrapped__)


train = _ApiEntry("train")
predict = _ApiEntry("predict")
models = _ApiEntry("models")
tune = _ApiEntry("tune")
resume, evaluate, load_run, TrainedRun = api.resume, api.evaluate, api.load_run, api.TrainedRun
lr_find = api.lr_find
_ENTRIES = {"train": train, "predict": predict, "models": models, "tune": tune}

__all__ = ["train", "resume", "predict", "evaluate", "load_run", "models", "tune", "lr_find",
           "TrainedRun",
           "LowresError", "ConfigError", "DataError"]


class _Package(types.ModuleType):
    # Importing a sub-package binds it as an attribute of its parent; for the names
    # above that would hide the API function, so the entry stays (it answers for both).
    def __setattr__(self, name, value):
        if name in _ENTRIES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
