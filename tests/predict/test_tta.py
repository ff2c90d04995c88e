"""Test-time augmentation (lowres.predict.tta): views drawn from the run's own last-stage
augmentation, seeded, blended with the plain view; the modes a run cannot make are one line."""
from __future__ import annotations

import json

import pytest
import torch

from run_configs import error_lines, write_config
from lowres import api
from lowres.cli import main
from lowres.errors import LowresError
from lowres.predict.predictions import labelled_images, load_run, probabilities
from lowres.predict.tta import (TTA, TTA_MODES, blend, make_views, views_spec,
                                tta_setting)
from lowres.train.loop import train

RICH = [{"op": "random_choice", "weights": [1, 3],
         "ops": [{"op": "hflip", "p": 0.5}, {"op": "erasing", "p": 0.5}]},
        {"op": "translate", "fraction": 0.125},
        {"op": "erasing", "p": 0.5},
        {"op": "mixup", "alpha": 0.2}]


def stage(augment):
    return {"epochs": 1, "scheduler": {"name": "constant"}, "augment": augment}


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    """Runs whose last stage has: a rich augmentation (with ops left out at test time), a
    certain horizontal flip, nothing, only erasing."""
    root = tmp_path_factory.mktemp("tta")
    out = {}
    for name, last in (("rich", RICH), ("hflip", [{"op": "hflip", "p": 1.0}]), ("plain", []),
                       ("erasing", [{"op": "erasing", "p": 0.5}, {"op": "cutmix"}])):
        cfg = write_config(root / f"{name}.yaml", tiny_data,
                           stages=[stage([{"op": "hflip", "p": 0.5}]), stage(last)])
        assert train(cfg, run_dir=root / name).state == "finished"
        out[name] = root / name
    return out


def val(run):
    loaded = load_run(run, "best", "cpu")
    return loaded, labelled_images(loaded).images


def test_the_views_leave_out_mixers_and_erasing_and_keep_random_choice_weights():
    kept, dropped = views_spec(RICH)
    assert kept == [{"op": "random_choice", "weights": [1], "ops": [{"op": "hflip", "p": 0.5}]},
                    {"op": "translate", "fraction": 0.125}]
    assert sorted(dropped) == ["erasing", "erasing", "mixup"]
    assert views_spec([{"op": "cutmix"}, {"op": "mixup_cutmix"}])[0] == []


def test_aug_tta_is_reproducible_bitwise_and_differs_from_plain(runs):
    loaded, images = val(runs["rich"])
    setting = TTA("aug", views=4)
    a = probabilities(loaded, images, setting)
    b = probabilities(loaded, images, setting)
    assert torch.equal(a, b)
    assert not torch.allclose(a, probabilities(loaded, images, "none"))
    assert torch.allclose(a.sum(1), torch.ones(len(images)), atol=1e-5)
    other_seed = probabilities(loaded, images, TTA("aug", views=4, seed=1))
    assert not torch.equal(a, other_seed)


def test_more_views_keep_the_first_ones_and_the_blend_is_a_lerp(runs):
    loaded, images = val(runs["rich"])
    stacks = {}
    for n in (2, 5):
        views = make_views(TTA("aug", views=n, beta=0.25), loaded.cfg, loaded.pipeline,
                           torch.device("cpu"), loaded.eval_batch, loaded.run_dir, keep=True)
        probs = probabilities(loaded, images, "aug", views=views)
        stacks[n] = torch.cat(views.stacks, dim=1)
        expected = 0.25 * stacks[n][0] + 0.75 * stacks[n][1:].mean(0)
        assert torch.allclose(probs, expected, atol=1e-5)
    assert torch.allclose(stacks[5][:3], stacks[2], atol=1e-6)
    plain = probabilities(loaded, images, "none")
    assert torch.allclose(stacks[2][0], plain, atol=1e-5)
    # beta = 1: the plain view alone
    assert torch.allclose(probabilities(loaded, images, TTA("aug", views=3, beta=1.0)), plain, atol=1e-5)
    assert torch.equal(blend(plain, stacks[2][1], 0.0), stacks[2][1])


def test_views_come_from_the_runs_last_stage(runs):
    # Its last stage flips every image: every view is the flip, so an equal blend of the
    # plain view and the views is flip TTA (the first stage's p=0.5 flip is not used).
    loaded, images = val(runs["hflip"])
    aug = probabilities(loaded, images, TTA("aug", views=3, beta=0.5))
    assert torch.allclose(aug, probabilities(loaded, images, "flip"), atol=1e-5)
    # aug+flip: the plain part is flip TTA, (p + f) / 2; the views are f.
    plain, flip = probabilities(loaded, images, "none"), probabilities(loaded, images, "flip")
    flipped = 2 * flip - plain
    both = probabilities(loaded, images, TTA("aug+flip", views=2, beta=0.5))
    assert torch.allclose(both, 0.5 * flip + 0.5 * flipped, atol=1e-5)


def test_auto_is_aug_where_the_run_augments_and_none_where_it_does_not(runs):
    loaded, images = val(runs["rich"])
    assert torch.equal(probabilities(loaded, images, None), probabilities(loaded, images, TTA("aug")))
    for name in ("plain", "erasing"):
        loaded, images = val(runs[name])
        assert torch.equal(probabilities(loaded, images, "auto"), probabilities(loaded, images, "none"))


@pytest.mark.parametrize("name, why", [("plain", "has no augmentation"),
                                       ("erasing", "has only cutmix, erasing, which test-time")])
def test_aug_on_a_run_that_cannot_make_it_is_one_line(runs, tiny_data, tmp_path, capsys, name, why):
    for command in (["predict", str(runs[name]), "--data", str(tiny_data), "--out", str(tmp_path / "s.csv")],
                    ["evaluate", str(runs[name]), "--out", str(tmp_path / "e")]):
        assert main([*command, "--tta", "aug"]) != 0
        lines = error_lines(capsys)
        assert len(lines) == 1, lines
        assert why in lines[0] and "use --tta flip" in lines[0] and "last stage (stages.1)" in lines[0]
    assert not (tmp_path / "s.csv").exists()
    with pytest.raises(LowresError, match=why):
        api.predict(runs[name], tiny_data, tta="aug+flip")


@pytest.mark.parametrize("args, message", [
    (("sideways",), "--tta 'sideways' is not one of auto, none, flip, aug, aug\\+flip"),
    (("aug", 0), "--tta-views must be a whole number of at least 1"),
    (("aug", 4, 1.5), "--tta-beta .* must be in \\[0, 1\\]"),
    (("flip", 4), "--tta-views and --tta-beta apply to --tta aug / aug\\+flip"),
])
def test_bad_settings_are_one_line(args, message):
    with pytest.raises(LowresError, match=message) as info:
        tta_setting(*args)
    assert "\n" not in str(info.value)


def test_the_cli_offers_every_mode_and_passes_views_and_beta(runs, tiny_data, tmp_path, capsys):
    from lowres.cli.main import build_parser

    parser = build_parser()
    predict = parser._subparsers._group_actions[0].choices["predict"]
    tta = next(a for a in predict._actions if a.dest == "tta")
    assert tuple(tta.choices) == TTA_MODES and tta.default == "auto"
    out = tmp_path / "e"
    assert main(["evaluate", str(runs["rich"]), "--tta", "aug", "--tta-views", "3",
                 "--tta-beta", "0.5", "--out", str(out)]) == 0
    result = json.loads((out / "evaluation.json").read_text())
    assert (result["tta"], result["tta_views"], result["tta_beta"]) == ("aug", 3, 0.5)
    assert "tta: aug (3 views, plain weight 0.5)" in capsys.readouterr().out
    assert main(["predict", str(runs["rich"]), "--data", str(tiny_data), "--out",
                 str(tmp_path / "s.csv"), "--tta", "flip", "--tta-views", "3"]) == 2
    assert "apply to --tta aug / aug+flip" in error_lines(capsys)[0]
    # The API's predict is the CLI's (default auto = aug here).
    sub = api.predict(runs["rich"], tiny_data, tta_views=3, out=tmp_path / "api.csv")
    assert main(["predict", str(runs["rich"]), "--data", str(tiny_data), "--tta-views", "3",
                 "--out", str(tmp_path / "cli.csv")]) == 0
    assert (tmp_path / "api.csv").read_text() == (tmp_path / "cli.csv").read_text()
    assert len(sub) == 12
