"""`lowres sweep`: a grid of overrides (times seeds), each point a training run, then a comparison.

Owns: the grid's values and point names (grid), the points and the per-point decision
(train, resume, skip) and the sequential run (points), points as local processes one GPU or
core share each (parallel) and as Ray tasks (on_ray).
May import: basics, config, run, track (the comparison) and train (lazily: the training
function). `lowres.tune` builds on it; it never imports tune.
"""
