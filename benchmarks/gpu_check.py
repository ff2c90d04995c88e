"""`make gpu-check`: what the first session on a GPU must learn, in one command (<= 8 min).

Runs from the source tree with the machine's own Python (PYTHONPATH=src; nothing is
installed, nothing downloaded) and writes gpu-check.json and gpu-check.md into --out:

  environment      GPU, driver, CUDA, torch/torchvision versions, the archs torch was
                   built for (torch.cuda.get_arch_list()) and whether this GPU is one
  cuda tests       tests marked `cuda` (pytest -m cuda): indexed devices, where == subset on
                   the GPU, an epoch under torch.cuda.set_sync_debug_mode("error"), train +
                   pause + resume + predict on the GPU, then resume on the CPU
  augmentation     images/s of the seed's stage 1, stage 2 and AugMix on the device, and
                   operations (CPU) or kernels (GPU) per batch
  resnet50         the seed's ResNet50 (k4 stem) at 40x40: training images/s in bf16, eager
                   and compiled, at batch 200 and 512; MFU, recompiles, peak memory; the
                   augmentation/training ratio (goal: augmentation >= 10x training)
  tiny40 stage 1   the seed's stage 1 (ResNet50, batch 200) on the carried tiny40 subset
                   (benchmarks/gpu_check_data.py) for --stage1-seconds: val accuracy per
                   epoch and images/s

Without CUDA it runs its CPU parts (environment, the accelerator-path-on-CPU tests,
augmentation on the CPU) and says in one line what it skipped.

    PYTHONPATH=src python3 benchmarks/gpu_check.py [--out gpu-check] [--budget 480]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lowres.augment import build_pipeline  # noqa: E402
from lowres.augment.base import forced_masking  # noqa: E402
from lowres.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from lowres.models import build_model  # noqa: E402
from lowres.models.zoo import count_flops  # noqa: E402
from lowres.train.device import kernels_run_on, resolve  # noqa: E402
from lowres.train.engine import Engine  # noqa: E402

SUBSET = ROOT / "data" / "gpu-check" / "tiny40-subset.tar.gz"
# Dense bf16 tensor-core peaks (vendor datasheets, TFLOP/s), for MFU.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0,
                    "T4": 65.0, "V100": 125.0}
SEED_FLIP = {"op": "random_choice", "ops": [{"op": "hflip", "p": 0.25}, {"op": "vflip", "p": 0.25}]}
SEED_ERASING = {"op": "erasing", "p": 0.5, "scale": [0.02, 0.33], "ratio": [1.0, 1.0]}
AUGMENT = {
    "stage1": [SEED_FLIP, {"op": "grayscale", "p": 0.1},
               {"op": "gaussian_blur", "p": 1.0, "kernel_size": 3, "sigma": [0.1, 2.0]}, SEED_ERASING],
    "stage2": [SEED_FLIP, {"op": "randaugment", "num_ops": 2, "magnitude": 9}, SEED_ERASING],
    "augmix": [SEED_FLIP, {"op": "augmix"}, SEED_ERASING],
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment(cuda: bool) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        import torchvision
        info["torchvision"] = torchvision.__version__
    except ImportError:
        info["torchvision"] = None
    if cuda:
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), gpus=torch.cuda.device_count(),
                    cuda_arch_list=torch.cuda.get_arch_list(),
                    kernels_for_this_gpu=kernels_run_on(torch.cuda.get_arch_list(),
                                                        (props.major, props.minor)))
        try:
            info["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            info["driver"] = None
    return info


def run_tests(out: Path, marker_expr: str, paths: list[str], timeout: float) -> dict:
    """pytest in a subprocess; the per-test outcomes from its JUnit XML."""
    xml = out / f"pytest-{marker_expr.replace(' ', '_')}.xml"
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               LOWRES_CACHE_DIR=tempfile.mkdtemp(prefix="lowres-cache-"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", marker_expr,
           f"--junitxml={xml}", *paths]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    outcomes = {}
    if xml.exists():
        import xml.etree.ElementTree as ET
        for case in ET.parse(xml).getroot().iter("testcase"):
            kind = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
            detail = next((c.get("message", "") for c in case if c.tag in ("failure", "error")), "")
            outcomes[case.get("name")] = kind + (f": {detail.splitlines()[0][:200]}" if detail else "")
    return {"exit_code": proc.returncode, "seconds": round(time.perf_counter() - start, 1),
            "tests": outcomes,
            # A failing section keeps both streams: import errors and crashes are on stderr.
            "tail": (proc.stdout[-1500:] + "\n--- stderr ---\n" + proc.stderr[-1500:]
                     if proc.returncode else "")}


def count_work_per_batch(pipeline, images, labels, generator, device) -> dict:
    """Kernels per batch on a GPU (profiler), dispatched operations elsewhere: the
    launch count is what bounds a batch's speed when each kernel is tiny."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.ops += 1
            return func(*args, **(kwargs or {}))

    with Count():
        pipeline(images, labels, generator)
    result = {"operations": Count.ops}
    if device.type == "cuda":
        try:
            from torch.profiler import ProfilerActivity, profile
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                pipeline(images, labels, generator)
                sync(device)
            result["kernels"] = sum(1 for e in prof.events() if e.device_type.name == "CUDA")
        except Exception as exc:  # noqa: BLE001 (no profiler support: report, go on)
            result["kernels"] = f"profiler unavailable ({type(exc).__name__})"
    return result


def augmentation(device: torch.device, batch: int, batches: int) -> dict:
    mode = "subset" if device.type == "cpu" else "where"
    images = torch.randint(0, 256, (batch, 3, 40, 40), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 200, (batch,), device=device)
    results = {"batch": batch, "masking": mode}
    variants = [(name, False) for name in AUGMENT]
    if device.type == "cuda":  # train.compile_augment=yes: the ops as one Inductor graph
        variants += [("stage1", True), ("stage2", True)]
    with forced_masking(mode):
        for name, compiled in variants:
            pipeline = build_pipeline(AUGMENT[name], (0.48, 0.45, 0.40), (0.27, 0.26, 0.28), 200)
            if compiled:
                pipeline.compile_ops()
            generator = torch.Generator(device=device).manual_seed(0)
            start = time.perf_counter()
            for _ in range(3):
                pipeline(images, labels, generator)
            sync(device)
            warmup = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(batches):
                pipeline(images, labels, generator)
            sync(device)
            seconds = time.perf_counter() - start
            key = f"{name} compiled" if compiled else name
            results[key] = {"images_per_s": round(batch * batches / seconds),
                            "warmup_seconds": round(warmup, 1),
                            **({} if compiled else
                               count_work_per_batch(pipeline, images, labels, generator, device))}
    return results


def training_throughput(device: torch.device, batch: int, compiled: bool, steps: int,
                        precision: str = "bf16") -> dict:
    """ResNet50 (seed k4 stem) training steps on random 40x40 batches under autocast
    (`precision=fp16`: with the grad scaler, as on a T4), with the memory estimate
    (train/memory_estimate.py) next to the measured peak."""
    from lowres.train.memory_estimate import estimate
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    cfg = ModelConfig(name="resnet50", stem="k4", dropout=0.8)
    policy = resolve(TrainConfig(device=str(device), precision=precision,
                                 compile="yes" if compiled else "no"), DataConfig())
    model = build_model(cfg, 200, 3, 40)
    estimated = estimate(model, (3, 40, 40), "sgd", ema=False, amp=True).peak_bytes(batch)
    flops = count_flops(model, 40)
    engine = Engine(model, policy, label_smoothing=0.1)
    optimizer = torch.optim.SGD(engine.module.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = engine._prepare(torch.randn(batch, 3, 40, 40, device=device))
    y = torch.randint(0, 200, (batch,), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(3):  # compile, autotune, warm up
        engine.train_step(x, y, optimizer)
    sync(device)
    warmup = time.perf_counter() - start
    graphs_after_warmup = int(torch._dynamo.utils.counters["stats"].get("unique_graphs", 0))
    start = time.perf_counter()
    for _ in range(steps):
        engine.train_step(x, y, optimizer)
    sync(device)
    seconds = time.perf_counter() - start
    img_s = batch * steps / seconds
    graphs = int(torch._dynamo.utils.counters["stats"].get("unique_graphs", 0))
    result = {"batch": batch, "compile": compiled, "precision": precision,
              "scaler": engine.scaler is not None, "images_per_s": round(img_s),
              "estimated_peak_gib": round(estimated / 2**30, 2),
              "warmup_seconds": round(warmup, 1), "forward_gflops_per_image": round(flops / 1e9, 3),
              "still_compiled": engine.compiled if compiled else None,
              # Graphs compiled in the warm-up, and any compiled after it (recompiles).
              "graphs_compiled": graphs, "recompiles": graphs - graphs_after_warmup}
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
        # A training step is ~3 forwards (forward, and a backward of about twice its cost).
        result["mfu"] = round(3 * flops * img_s / (peak * 1e12), 4) if peak else None
    del engine, optimizer, model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def workflow_fp16(out: Path) -> dict:
    """The user's path on a T4, forced here: `lowres train` in fp16 with the grad scaler,
    paused, `--resume`d, then `predict`; each command's exit code and output tails."""
    from lowres.data.synthetic import make_competition_dataset

    work = Path(tempfile.mkdtemp(prefix="lowres-fp16-"))
    data = make_competition_dataset(work / "data", classes=10, per_class=60, test_per_class=2, size=40)
    run = out / "fp16-run"
    shutil.rmtree(run, ignore_errors=True)
    small = [f"data.root={data}", "model.name=resnet18", "stages.0.epochs=2", "stages.1.epochs=1",
             "stages.2.epochs=1", "train.precision=fp16", "data.val_fraction=0.1"]
    commands = {"train": ["train", str(ROOT / "configs" / "seed" / "final.yaml"), *small,
                          "--run-dir", str(run), "--pause-after", "2"],
                "resume": ["train", "--resume", str(run)],
                "predict": ["predict", str(run), "--data", str(data), "--out", str(work / "sub.csv")]}
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               LOWRES_CACHE_DIR=str(work / "cache"))
    result = {}
    for name, args in commands.items():
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "lowres", *args], capture_output=True, text=True,
                              env=env, timeout=300)
        result[name] = {"exit_code": proc.returncode, "seconds": round(time.perf_counter() - start, 1),
                        "stdout": proc.stdout[-1200:], "stderr": proc.stderr[-1200:]}
        if proc.returncode:
            break
    if (run / "status.json").exists():
        result["status"] = json.loads((run / "status.json").read_text())
    return result


def seed_stage1(out: Path, seconds: float) -> dict:
    """The seed's stage 1 on the carried tiny40 subset, for a fixed wall time."""
    from lowres import config as config_mod
    from lowres.run.log import read_metrics
    from lowres.train.loop import train
    import yaml

    if not SUBSET.exists():
        return {"skipped": f"{SUBSET.relative_to(ROOT)} not carried (make it with "
                           f"benchmarks/gpu_check_data.py and name data/gpu-check in carry)"}
    work = Path(tempfile.mkdtemp(prefix="lowres-tiny40-"))
    with tarfile.open(SUBSET) as tar:
        tar.extractall(work, filter="data")
    final = config_mod.to_dict(config_mod.load(ROOT / "configs" / "seed" / "final.yaml",
                                               [f"data.root={work / 'tiny40'}",
                                                "data.val_fraction=0.02"]))
    final["stages"] = final["stages"][:1]
    final["name"] = "seed-stage1"
    cfg_path = work / "stage1.yaml"
    cfg_path.write_text(yaml.safe_dump(final, sort_keys=False))
    run_dir = out / "tiny40-stage1"
    start = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        result = train(cfg_path, run_dir=run_dir, time_limit=seconds, out=quiet)
    rows = read_metrics(run_dir)
    return {"wall_seconds": round(time.perf_counter() - start, 1), "state": result.state,
            "train_images": 50_000 - 1_000, "val_images": 1_000,
            "epochs": [{"epoch": int(r["epoch"]), "val_acc": float(r["val_acc"] or "nan"),
                        "train_acc": float(r["train_acc"]), "images_per_s": float(r["images_per_s"]),
                        "seconds": float(r["seconds"])} for r in rows]}


def markdown(report: dict) -> str:
    lines = [f"# gpu-check {report['date']}", "", "```", json.dumps(report["environment"], indent=1),
             "```", ""]
    if report.get("skipped"):
        lines += [f"Skipped: {report['skipped']}", ""]
    for name, section in report["sections"].items():
        lines += [f"## {name}", ""]
        if isinstance(section, dict) and "error" in section:
            lines += [f"FAILED: {section['error']}", ""]
            continue
        if name.endswith("tests"):
            lines += [f"exit code {section['exit_code']}, {section['seconds']} s", ""]
            lines += [f"- {test}: {outcome}" for test, outcome in section["tests"].items()] + [""]
        elif name == "augmentation":
            lines += [f"batch {section['batch']}, {section['masking']} mode", "",
                      "| pipeline | images/s | warm-up s | ops/batch | kernels/batch |",
                      "|---|---:|---:|---:|---:|"]
            for stage, s in section.items():
                if isinstance(s, dict):
                    lines.append(f"| {stage} | {s['images_per_s']:,} | {s['warmup_seconds']} | "
                                 f"{s.get('operations', '-')} | {s.get('kernels', '-')} |")
            lines.append("")
        elif name == "resnet50":
            lines += ["| batch | precision | compile | images/s | MFU | peak GiB | estimated GiB | "
                      "warm-up s | graphs | recompiles |",
                      "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
            for r in section["runs"]:
                lines.append(f"| {r['batch']} | {r['precision']} | {r['compile']} | {r['images_per_s']:,} | "
                             f"{r.get('mfu')} | {r.get('peak_memory_gib')} | {r['estimated_peak_gib']} | "
                             f"{r['warmup_seconds']} | {r['graphs_compiled']} | {r['recompiles']} |")
            lines += ["", f"augmentation / training (stage 2 vs compiled batch 200): "
                          f"{section.get('augment_over_training')}", ""]
        elif name == "tiny40 stage 1" and "epochs" in section:
            lines += [f"{section['state']} after {section['wall_seconds']} s", "",
                      "| epoch | val acc | train acc | images/s | s |", "|---:|---:|---:|---:|---:|"]
            lines += [f"| {e['epoch']} | {e['val_acc']:.4f} | {e['train_acc']:.4f} | "
                      f"{e['images_per_s']:,.0f} | {e['seconds']:.1f} |" for e in section["epochs"]]
            lines.append("")
        else:
            lines += ["```", json.dumps(section, indent=1), "```", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-check"))
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for the whole check")
    ap.add_argument("--stage1-seconds", type=float, default=180.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "environment": environment(cuda),
              "sections": {}}
    skipped = [] if cuda else ["cuda tests", "GPU augmentation", "ResNet50 bf16 training "
                               "throughput", "tiny40 stage 1"]

    def left() -> float:
        return args.budget - (time.perf_counter() - began)

    def section(name: str, fn, *fn_args, needs: float = 0.0) -> None:
        if left() < needs:
            skipped.append(f"{name} (budget spent)")
            return
        print(f"gpu-check: {name} ...", flush=True)
        start = time.perf_counter()
        try:
            report["sections"][name] = fn(*fn_args)
        except Exception as exc:  # noqa: BLE001 (one section failing must not hide the rest)
            report["sections"][name] = {"error": f"{type(exc).__name__}: {exc}",
                                        "traceback": traceback.format_exc()[-3000:]}
        print(f"gpu-check: {name} done in {time.perf_counter() - start:.0f} s", flush=True)

    if cuda:
        section("cuda tests", run_tests, args.out, "cuda", ["tests/gpu"], 240)
        section("augmentation", augmentation, device, 512, 20)

        def resnet50() -> dict:
            runs = [training_throughput(device, 200, False, 20),
                    training_throughput(device, 200, True, 30),
                    training_throughput(device, 512, True, 20),
                    training_throughput(device, 200, False, 20, precision="fp16")]
            aug = report["sections"].get("augmentation", {}).get("stage2", {}).get("images_per_s")
            ratio = round(aug / runs[1]["images_per_s"], 1) if aug else None
            return {"runs": runs, "augment_over_training": ratio}
        section("resnet50", resnet50, needs=120)
        section("fp16 train, resume, predict", workflow_fp16, args.out, needs=150)
        section("tiny40 stage 1", lambda: seed_stage1(args.out, min(args.stage1_seconds,
                                                                      max(60.0, left() - 30))),
                needs=90)
    else:
        section("accelerator path on the CPU tests", run_tests, args.out, "not cuda",
                ["tests/train/test_accelerator_path_on_cpu.py"], 600)
        section("augmentation", augmentation, device, 256, 4)
    report["skipped"] = "; ".join(skipped)
    report["seconds"] = round(time.perf_counter() - began, 1)
    (args.out / "gpu-check.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.out / "gpu-check.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    if skipped:
        print(f"gpu-check: skipped: {report['skipped']}" + ("" if cuda else " (no CUDA GPU here)"))
    failed = [n for n, s in report["sections"].items()
              if isinstance(s, dict) and ("error" in s or s.get("exit_code", 0) != 0)]
    print(f"gpu-check: {'FAILED: ' + ', '.join(failed) if failed else 'all sections ran'} in "
          f"{report['seconds']:.0f} s; wrote {args.out / 'gpu-check.md'} and gpu-check.json")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
