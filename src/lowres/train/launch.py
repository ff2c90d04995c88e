"""`--devices N`: start the DDP processes from here, with torch's own launcher.

`lowres train CONFIG --devices 2` and `lowres.train(..., devices=2)` do what `torchrun
--standalone --nproc_per_node 2 -m lowres train CONFIG` does, from a terminal or a notebook:
torch's elastic launcher (`torch.distributed.launcher.api.elastic_launch`, the engine of
torchrun) spawns one process per device and each joins the process group as under torchrun
(`train/distributed.py`). What a notebook needs on top:

- Output. A child's stdout is the kernel's, not the cell's, so rank 0 sends its text and its
  progress-bar updates through a queue (`progress.relay_to`), and a thread here prints the text
  and draws the bars (notebook widgets in Jupyter) in the caller's cell or terminal.
- Stopping. The launcher turns SIGINT/SIGTERM (the stop button, Ctrl-C) into a shutdown that
  sends the signal on to every rank and waits for them; the ranks agree on a step, save
  last.pt and exit, as one process does. Each child has its own process group, so a
  terminal's Ctrl-C reaches it once, through the launcher, not twice (twice aborts).
- Errors. A rank's LowresError comes back as that error (same class, same line); anything
  else as one line naming the launcher's log.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue as queue_mod
import signal
import sys
import threading
import uuid
from pathlib import Path

from lowres.basics import progress
from lowres.errors import ConfigError, LowresError

RELAY_POLL = 0.1  # seconds: how often the relay thread looks at the queue


def check_devices(devices: int, config_path, overrides, resume) -> None:
    """One line before any process starts: a count this machine cannot run."""
    import torch

    if devices < 1:
        raise ConfigError(f"--devices {devices}: give a number of processes of 1 or more")
    if os.environ.get("WORLD_SIZE") not in (None, "1"):
        raise ConfigError("--devices starts its own processes, but this already runs under torchrun "
                          "(WORLD_SIZE is set): drop --devices")
    device = _device_setting(config_path, overrides, resume)
    if device != "cpu" and torch.cuda.is_available() and devices > torch.cuda.device_count():
        raise ConfigError(f"--devices {devices} but this machine has {torch.cuda.device_count()} "
                          f"visible GPU(s): use --devices {torch.cuda.device_count()} or fewer")


def _device_setting(config_path, overrides, resume) -> str:
    from lowres import config as config_mod

    path = Path(resume) / "config.yaml" if resume is not None else config_path
    if path is None or not Path(path).is_file():
        return "auto"  # the ranks report a missing config in their own words
    return config_mod.load(path, list(overrides), require_root=False).train.device


def _worker(relay, watched, config_path, overrides, run_dir, resume, time_limit, pause_after_epochs,
            pause_after_steps):
    """One rank (a spawned process). Returns ('ok', state) or ('error', class, line)."""
    from lowres.train.loop import train

    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the launcher only; it forwards one signal
    main = os.environ.get("RANK") == "0"
    if main:  # what rank 0 prints and draws goes to the caller's cell or terminal
        sys.stdout = progress.QueueWriter(relay, "out")
        sys.stderr = progress.QueueWriter(relay, "err")
        progress.relay_to(relay, watched)
    try:
        result = train(config_path, overrides, run_dir=run_dir, resume=resume, time_limit=time_limit,
                       pause_after_epochs=pause_after_epochs, pause_after_steps=pause_after_steps,
                       out=sys.stdout)
    except LowresError as exc:
        return ("error", type(exc).__name__, str(exc))
    if result is not None and result.reason in ("SIGINT", "SIGTERM"):
        # The launcher is shutting down and will not read a return value (the child would
        # wait for it until killed): the run is saved, so leave now, once rank 0's last lines
        # are through the queue.
        relay.close()
        relay.join_thread()
        os._exit(0)
    return ("ok", result.state if result else None)


def train_on_devices(devices: int, config_path, overrides, run_dir=None, resume=None, time_limit=None,
                     pause_after_epochs=None, pause_after_steps=None):
    """Train on `devices` processes (GPUs, or gloo CPU processes); returns rank 0's
    (state, run_dir), state None for nothing trained. A stop by signal returns what the
    run directory says (stopped) once every rank has saved."""
    import multiprocessing

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check_devices(devices, config_path, overrides, resume)
    if resume is None and run_dir is None and config_path is not None:
        # Named here, once: every rank and this process must agree on it.
        from lowres import config as config_mod
        from lowres.run.directory import default_run_dir

        run_dir = default_run_dir(config_mod.load(config_path, list(overrides)), config_path)
    relay = multiprocessing.get_context("spawn").Queue()
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=devices, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0,
                          monitor_interval=0.5, start_method="spawn")
    args = (relay, progress.interactive(), str(config_path) if config_path else None, list(overrides),
            str(run_dir) if run_dir else None, str(resume) if resume else None, time_limit,
            pause_after_epochs, pause_after_steps)
    shown = _Relay(relay)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # The launcher's own warnings ("Received 2 death signal, shutting down workers") say
    # what our lines say better; its loggers each have a level of their own.
    quiet = {name: logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
             if name.startswith("torch.distributed.elastic")}
    levels = {name: logger.level for name, logger in quiet.items()}
    for logger in quiet.values():
        logger.setLevel(logging.ERROR)
    shown.start()
    try:
        with _main_script_hidden():
            returned = elastic_launch(config, _worker)(*args)
    except SignalException as exc:
        shown.stop()
        return _after_signal(exc, run_dir or resume)
    except ChildFailedError as exc:
        shown.stop()
        rank, failure = exc.get_first_failure()
        raise LowresError(f"training process {rank} of {devices} failed ({_first_line(failure.message)}); "
                          f"its log: {failure.error_file or 'the output above'}") from None
    finally:
        shown.stop()
        relay.close()
        relay.join_thread()
        for name, logger in quiet.items():
            logger.setLevel(levels[name])
        for sig, handler in handlers.items():  # the launcher's handlers must not outlive it
            signal.signal(sig, handler)
    kind, *detail = returned[0]
    if kind == "error":
        import lowres.errors as errors

        raise getattr(errors, detail[0], LowresError)(detail[1])
    if detail[0] is None:
        return None, None
    return _after_signal(None, run_dir or resume)


@contextlib.contextmanager
def _main_script_hidden():
    """A spawned process imports the parent's main script again (it might define the function
    to run) unless the script has no file and no spec. Ours is `_worker`, here; without its
    file, a user's script calling `lowres.train(devices=N)` needs no `if __name__ ==
    "__main__":` guard, and `python -c` / `python -` work too."""
    main = sys.modules["__main__"]
    saved = {key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _after_signal(exc, run_dir):
    """(state, run_dir) as the run directory tells them once every rank has left."""
    from lowres.run.read import run_state

    if run_dir is None or not Path(run_dir).is_dir():
        raise KeyboardInterrupt from None
    return run_state(Path(run_dir)), str(run_dir)


def _first_line(text) -> str:
    lines = [line for line in str(text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class _Relay(threading.Thread):
    """Prints rank 0's text and draws its bars here, until stopped and drained."""

    def __init__(self, relay) -> None:
        super().__init__(daemon=True, name="lowres-relay")
        self.relay = relay
        self.done = threading.Event()
        self.bars: dict[int, object] = {}

    def run(self) -> None:
        while True:
            try:
                message = self.relay.get(timeout=RELAY_POLL)
            except queue_mod.Empty:
                if self.done.is_set():
                    break
                continue
            except (EOFError, OSError):
                break
            self.show(message)
        for shown in self.bars.values():
            shown.close()

    def show(self, message) -> None:
        kind, *rest = message
        if kind in ("out", "err"):
            stream = sys.stdout if kind == "out" else sys.stderr
            stream.write(rest[0])
            stream.flush()
        elif kind == "bar":
            key, method, payload = rest
            if method == "new":
                self.bars[key] = progress.bar(**payload)
            elif key in self.bars:
                shown = self.bars[key]
                if method == "close":
                    self.bars.pop(key).close()
                elif method == "update":
                    shown.update(payload)
                elif method == "postfix":
                    shown.set_postfix_str(payload)

    def stop(self) -> None:
        if self.is_alive():
            self.done.set()
            self.join()
