"""README's "On Kaggle and Colab", run as written on a simulated Kaggle: the competition
data and the last session's output are read-only input folders (real read-only bind
mounts), the working folder is writable. The commands come from the README's ```sh blocks,
so the docs cannot drift from what works; the test only points the paths at its folders,
adds a small model and short stages, and ends each session after one epoch (where Kaggle's
`--time-limit 11h30m` would end it)."""
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from read_only_mount import read_only_view
from lowres.cli import main
from lowres.run.log import read_events, read_metrics

README = Path(__file__).resolve().parents[1] / "README.md"
SMALL = ["model.name=resnet8", "model.stem=k3", "train.batch_size=16", "train.device=cpu",
         "data.val_fraction=0.25", "stages.0.epochs=1", "stages.1.epochs=1", "stages.2.epochs=1",
         "track.plots=false", "track.report=false"]


def readme_blocks(platform: str = "kaggle") -> list[list[str]]:
    """The ```sh blocks of the README's Kaggle part (before "### Colab") or Colab part."""
    text = README.read_text()
    section = text[text.index("## On Kaggle and Colab"):]
    section = section[:section.index("\n## ", 3)]
    kaggle, colab = section.split("\n### Colab\n")
    part = kaggle if platform == "kaggle" else colab
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", part, re.S)]


def run_block(lines: list[str], input_dir: Path, working: Path, session_end: bool,
              paths: dict[str, Path] | None = None) -> None:
    paths = paths or {"/kaggle/input": input_dir, "/kaggle/working": working}
    for line in lines:
        for written, here in paths.items():
            line = line.replace(written, str(here))
        words = shlex.split(line)
        if words[0] == "pip":  # lowres is already installed here (from this checkout)
            continue
        if words[0] == "cd":
            assert Path(words[1]) == working
            continue
        if words[0] == "printf":
            subprocess.run(line, shell=True, cwd=working, check=True)
            continue
        assert words[0] == "lowres", line
        args = words[1:]
        if args[0] == "train":
            args += SMALL[3:] if "--resume" in args else SMALL
            args += ["--pause-after", "1"] if session_end else []
        assert main(args) == 0, line


def test_the_kaggle_section_trains_across_sessions_and_submits(tiny_data, tmp_path, monkeypatch,
                                                                capsys):
    first, later, submit, submit_finished = readme_blocks()
    assert any("--time-limit 11h30m" in line for line in first + later)
    kaggle = tmp_path / "kaggle"
    competition = tmp_path / "competition"
    shutil.copytree(tiny_data, competition)
    working = kaggle / "working"
    outputs = tmp_path / "saved-versions"
    for session in range(1, 4):
        # A new session: a fresh working folder; inputs are the data and the last version's output.
        shutil.rmtree(working, ignore_errors=True)
        working.mkdir(parents=True)
        monkeypatch.chdir(working)
        inputs = kaggle / "input"
        with read_only_view(competition, inputs / "COMPETITION"):
            if session == 1:
                run_block(first, inputs, working, session_end=True)
            else:
                with read_only_view(outputs / f"v{session - 1}", inputs / "NOTEBOOK"):
                    run_block(later, inputs, working, session_end=session < 3)
            if session == 3:
                run_block(submit, inputs, working, session_end=False)
                rows = (working / "submission.csv").read_text().splitlines()
                assert rows[0] == "Id,Category" and len(rows) == 13
        # "Save Version": Kaggle keeps /kaggle/working as this version's output.
        shutil.copytree(working, outputs / f"v{session}", ignore=shutil.ignore_patterns(".lock"))
    run = outputs / "v3" / "runs" / "final"
    assert [int(r["epoch"]) for r in read_metrics(run)] == [1, 2, 3]  # one curve over 3 sessions
    events = [e["event"] for e in read_events(run)]
    assert events.count("moved") == 2 and events[-1] == "run_end"
    # A 4th session on the finished run: the resume says so and copies nothing; the
    # README's other submit block predicts from the input folder.
    shutil.rmtree(working)
    working.mkdir()
    monkeypatch.chdir(working)
    with read_only_view(competition, inputs / "COMPETITION"), \
            read_only_view(outputs / "v3", inputs / "NOTEBOOK"):
        resume = [line.replace("/kaggle/input", str(inputs)) for line in later if "lowres" in line]
        assert main(shlex.split(resume[0])[1:]) == 2
        assert f"lowres predict {inputs / 'NOTEBOOK' / 'runs' / 'final'}" in capsys.readouterr().err
        assert not (working / "runs" / "final").exists()
        run_block(submit_finished, inputs, working, session_end=False)
        assert len((working / "submission.csv").read_text().splitlines()) == 13


def test_the_colab_section_trains_across_sessions_on_drive_and_submits(tiny_data, tmp_path,
                                                                       monkeypatch):
    first, later, submit = readme_blocks("colab")
    drive = tmp_path / "drive"  # mounted in every session, writable, kept between them
    shutil.copytree(tiny_data, drive / "MyDrive" / "COMPETITION")
    content = tmp_path / "content"
    for session in range(1, 4):
        shutil.rmtree(content, ignore_errors=True)  # a new machine: only Drive is kept
        content.mkdir()
        monkeypatch.chdir(content)
        paths = {"/content/drive": drive, "/content": content}
        run_block(first if session == 1 else later, drive, content, session_end=session < 3,
                  paths=paths)
    run_block(submit, drive, content, session_end=False, paths=paths)
    assert len((content / "submission.csv").read_text().splitlines()) == 13
    run = drive / "MyDrive" / "runs" / "final"
    assert [int(r["epoch"]) for r in read_metrics(run)] == [1, 2, 3]  # one run, in place
    events = [e["event"] for e in read_events(run)]
    assert events.count("resume") == 2 and "moved" not in events and events[-1] == "run_end"


@pytest.mark.parametrize("platform,block", [("kaggle", 0), ("kaggle", 1), ("kaggle", 2),
                                            ("kaggle", 3), ("colab", 0), ("colab", 1),
                                            ("colab", 2)])
def test_each_readme_command_is_a_real_command(platform, block):
    """Every `lowres` line of the section parses with the real CLI (no typo survives)."""
    from lowres.cli.main import build_parser

    for line in readme_blocks(platform)[block]:
        words = shlex.split(line)
        if words[0] == "lowres":
            build_parser().parse_known_args(words[1:])
