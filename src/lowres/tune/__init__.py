"""`lowres tune`: an Optuna search (TPE sampling, ASHA/Hyperband pruning) over config keys.

space.py reads and checks the search space, study.py opens the study (storage, sampler,
pruner), search.py runs trials as lowres runs, outputs.py writes best.yaml and report.html.
May import: basics, config, models (the space's model keys), run, track, train, sweep (its
process slots and Ray connection); nothing imports tune but the API and the commands.
"""
from lowres.tune.outputs import TuneResult
from lowres.tune.search import run_tune

__all__ = ["TuneResult", "run_tune"]
