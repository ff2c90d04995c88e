"""Every name a user reaches: the API's names, the CLI's entry point and the modules the README
tells users to import. A regrouping of the package must keep each of them."""
from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import lowres

API_FUNCTIONS = ["train", "resume", "predict", "evaluate", "load_run", "models", "tune",
                 "lr_find"]
ERRORS = ["LowresError", "ConfigError", "DataError"]


def test_all_lists_exactly_the_api():
    assert sorted(lowres.__all__) == sorted(API_FUNCTIONS + ERRORS + ["TrainedRun"])


@pytest.mark.parametrize("name", API_FUNCTIONS)
def test_each_api_function_is_callable_with_its_docstring(name):
    entry = getattr(lowres, name)
    assert callable(entry) and inspect.signature(entry).parameters
    assert entry.__doc__ and entry.__doc__.strip()


def test_errors_are_one_family_and_trained_run_is_a_class():
    for name in ERRORS:
        assert issubclass(getattr(lowres, name), lowres.LowresError)
    assert inspect.isclass(lowres.TrainedRun)
    assert isinstance(lowres.__version__, str) and lowres.__version__


@pytest.mark.parametrize("module,name", [
    ("lowres.cli", "main"),                              # [project.scripts] lowres = lowres.cli:main
    ("lowres.data.synthetic", "make_competition_dataset"),  # README: demo data of one's own
])
def test_documented_entry_points_import(module, name):
    assert callable(getattr(importlib.import_module(module), name))


def test_sub_package_names_stay_reachable_through_the_api_entries():
    # `lowres.train.loop` is the module as well as lowres.train being the function
    assert inspect.ismodule(lowres.train.loop)
    assert inspect.ismodule(lowres.models.zoo)


def test_python_dash_m_lowres_answers_help():
    out = subprocess.run([sys.executable, "-m", "lowres", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout
