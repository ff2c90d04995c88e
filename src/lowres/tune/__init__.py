"""`lowres tune`: an Optuna search (TPE sampling, ASHA/Hyperband pruning) over config keys.

space.py reads and checks the search space, study.py opens the study (storage, sampler,
pruner), search.py runs trials as lowres runs, outputs.py writes best.yaml and report.html.
"""
from lowres.tune.outputs import TuneResult
from lowres.tune.search import run_tune

__all__ = ["TuneResult", "run_tune"]
