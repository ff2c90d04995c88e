"""Which schedules let a trial continue with a larger budget: derived from the rules."""
from lowres.config import SchedulerConfig
from lowres.tune.budget import budget_free, budget_free_schedules


def test_schedules_whose_lr_ignores_the_stage_length():
    assert budget_free_schedules() == ["constant", "step", "multistep", "cosine_restarts",
                                       "plateau"]
    assert not budget_free(SchedulerConfig(name="cosine"))
    assert not budget_free(SchedulerConfig(name="onecycle"))
