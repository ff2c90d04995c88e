"""`lowres export RUN --format onnx|torchscript`: a deployable model and its class names.

The file takes uint8 images [N, C, H, W] (any N) and returns class probabilities; the
normalisation is inside (`inference.ProbabilityModel`). Beside it, `<file>.json` (e.g.
`model.onnx.json`) holds the class names (index = output column), the input shape and the
source checkpoint.

ONNX needs the `export` extra (onnx, onnxscript; onnxruntime to run it):
pip install 'lowres[export]'. TorchScript needs nothing beyond torch.
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import torch

from lowres.basics.compat import export_onnx
from lowres.errors import LowresError
from lowres.predict.inference import load_probability_model
from lowres.run.copies import output_path
from lowres.basics.disk import replace_text
from lowres.run import checkpoint

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
ONNX_OPSET = 18


def export(run_dir: str | Path, fmt: str = "onnx", which: str = "best", out: str | Path | None = None,
           log=None) -> Path:
    """Write the model file and its `.json` of class names; returns the model file's path."""
    log = log or sys.stdout
    if fmt not in FORMATS:
        raise LowresError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    model, meta = load_probability_model(run_dir, which)
    if out is None:
        out, note = output_path(Path(run_dir), Path(run_dir) / "export" / f"model{FORMATS[fmt]}")
        if note:
            print(f"lowres: note: {note}", file=log)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros((2, *meta["image_shape"]), dtype=torch.uint8)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")  # never leave half a file behind
    try:
        if fmt == "onnx":
            _export_onnx(model, example, tmp)
        else:
            _export_torchscript(model, example, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    info = {"format": fmt, "file": out.name, "class_names": list(meta["class_names"]),
            "input": {"dtype": "uint8", "shape": ["N", *meta["image_shape"]], "layout": "NCHW"},
            "output": "probabilities [N, classes], softmax over class_names",
            "source": str(checkpoint.find(run_dir, which).resolve())}
    names = out.with_name(out.name + ".json")  # model.onnx.json: one per file and format
    replace_text(names, json.dumps(info, indent=1) + "\n")
    print(f"lowres: wrote {out} (uint8 [N, {', '.join(map(str, meta['image_shape']))}] -> "
          f"probabilities over {len(meta['class_names'])} classes) and {names}", file=log)
    return out


def _export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
        traced = torch.jit.trace(model, example, check_trace=False)
    traced.save(str(path))


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise LowresError("ONNX export needs onnx and onnxscript: pip install 'lowres[export]'") from None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(model, example, path, ONNX_OPSET)
