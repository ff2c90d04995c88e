"""`lowres.train(..., devices=2)` in a real Jupyter kernel (jupyter_client, which nbclient
drives): the epoch lines appear in the cell, the stop button (an interrupt of the kernel)
stops both ranks with a saved checkpoint and prints the resume call, `lowres.resume(...,
devices=2)` finishes the run, and a rank's error is a LowresError in the cell."""
import os
import queue
import time

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
jupyter_client = pytest.importorskip("jupyter_client")

from run_configs import write_config  # noqa: E402


def run_cell(kc, code, on_output=None, timeout=600):  # generous: CI machines are shared
    """Execute `code`; returns (stream text, error name or None, number of widgets shown)."""
    msg_id = kc.execute(code)
    text, error, widgets = [], None, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text.append(content["text"])
            if on_output:
                on_output("".join(text))
        elif kind == "error":
            error = content["ename"]
        elif kind == "display_data":
            widgets += "application/vnd.jupyter.widget-view+json" in content["data"]
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(text), error, widgets
    raise AssertionError(f"cell did not finish in {timeout}s: {''.join(text)[-2000:]}")


@pytest.fixture
def kernel(tmp_path):
    env = dict(os.environ, LOWRES_BACKEND="gloo", OMP_NUM_THREADS="1")
    env.pop("LOWRES_PROGRESS", None)  # the kernel decides, as in a user's notebook
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path), env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_two_processes_from_a_notebook_with_the_stop_button(kernel, tiny_data, tmp_path):
    km, kc = kernel
    cfg = write_config(tmp_path / "c.yaml", tiny_data,
                       stages=[{"epochs": 500, "scheduler": {"name": "constant"}, "augment": []}])
    run = tmp_path / "run"
    interrupted = []

    def press_stop(text):
        if "epoch   2" in text and not interrupted:
            interrupted.append(True)
            km.interrupt_kernel()  # what the stop button does

    cell = (f"import lowres\nrun = lowres.train({str(cfg)!r}, run_dir={str(run)!r}, devices=2)\n"
            "print(run.state)")
    text, error, widgets = run_cell(kc, cell, on_output=press_stop)
    assert error is None, text
    assert "epoch   1 stage1 1/500" in text and "SIGINT received" in text
    assert f'lowres.resume("{run}")' in text and "stopped (resumable)" in text
    assert "\x1b[" not in text  # no terminal control codes in the cell
    try:
        import ipywidgets  # noqa: F401 - with it, rank 0's bars are notebook widgets here
        assert widgets > 0
    except ImportError:
        pass
    epochs = text.count("\nepoch ") + text.startswith("epoch ")
    text, error, _ = run_cell(kc, f"run = lowres.resume(run, 'stages.0.epochs={epochs + 1}', devices=2)\n"
                               f"print(run.state)")
    assert error is None and text.rstrip().endswith("finished"), text
    text, error, _ = run_cell(kc, f"lowres.train({str(cfg)!r}, 'data.root={tmp_path / 'missing'}', "
                               f"run_dir={str(tmp_path / 'bad')!r}, devices=2)")
    assert error == "DataError", text
