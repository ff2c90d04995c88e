"""Run the `lowres` CLI and SIGKILL this process at a chosen moment (a fault-injection
harness for the kill tests; not a test itself).

    python kill_driver.py MOMENT N -- lowres-args...

kills the process at the N-th (1-based) occurrence of MOMENT:
  step        right after an optimizer step (weights changed, nothing saved yet)
  checkpoint  halfway through writing a checkpoint's bytes (the background writer's thread)
  rename      after a checkpoint was written and verified, just before it takes its name
  metrics     halfway through appending a metrics.csv row
  events      halfway through appending an events.jsonl line
  config      halfway through writing config.yaml (start-up)
MOMENT "none" runs to the end. The kill is SIGKILL: no handler, no cleanup, no flush.
"""
from __future__ import annotations

import io
import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(moment: str, n: int) -> None:
    import torch

    from lowres.basics import disk
    from lowres.run import checkpoint
    from lowres.train.engine import Engine

    count = [0]

    def hit() -> bool:
        count[0] += 1
        return count[0] == n

    if moment == "step":
        real_step = Engine.train_step

        def step(self, *args):
            out = real_step(self, *args)
            if hit():
                _die()
            return out
        Engine.train_step = step
    elif moment == "checkpoint":
        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            if not hit():
                return real_save(obj, f, *args, **kwargs)
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            f.flush()
            os.fsync(f.fileno())
            _die()
        checkpoint.torch.save = save
    elif moment == "rename":
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if ".tmp" in os.path.basename(src) and \
                    os.path.basename(dst) in ("last.pt", "best.pt") and hit():
                _die()
            return real_replace(src, dst, *args, **kwargs)
        checkpoint.os.replace = replace
    elif moment in ("metrics", "events", "config"):
        target = {"metrics": "metrics.csv", "events": "events.jsonl", "config": "config.yaml"}[moment]
        real_append, real_replace_text = disk.append_text, disk.replace_text

        def half_then_die(path, text):
            with open(path, "a") as f:
                f.write(text[: max(1, len(text) // 2)])
                f.flush()
                os.fsync(f.fileno())
            _die()

        def append_text(path, text, *args, **kwargs):
            if str(path).endswith(target) and hit():
                half_then_die(path, text)
            return real_append(path, text, *args, **kwargs)

        def replace_text(path, text, *args, **kwargs):
            if str(path).endswith(target) and hit():
                # a write through the temp file: a kill leaves the temp, half written
                half_then_die(path.with_name(f".{path.name}.tmp{os.getpid()}"), text)
            return real_replace_text(path, text, *args, **kwargs)
        disk.append_text, disk.replace_text = append_text, replace_text
        import lowres.run.log as runlog
        runlog.append_text, runlog.replace_text = append_text, replace_text
    elif moment != "none":
        raise SystemExit(f"unknown moment {moment}")


if __name__ == "__main__":
    moment, n, sep, *argv = sys.argv[1:]
    assert sep == "--"
    install(moment, int(n))
    from lowres.cli import main

    sys.exit(main(argv))
