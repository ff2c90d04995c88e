"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel (so it cannot rot)."""
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("pandas")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ)
    env.pop("LOWRES_PROGRESS", None)  # the kernel decides: notebook bars, not terminal codes
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)  # raises CellExecutionError naming the failing cell
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # run.plot() drew inline
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "\x1b[" not in streams and "\r" not in streams  # no terminal control codes
    assert "finished" in streams
    try:
        import ipywidgets  # noqa: F401 - with it, tqdm.auto draws notebook widgets
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    except ImportError:
        pass
    submission = (tmp_path / "quickstart-submission.csv").read_text().splitlines()
    assert submission[0] == "Id,Category" and len(submission) == 21
