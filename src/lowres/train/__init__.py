"""Training: the loop (loop.py, read top to bottom) and what only training uses.

Owns: the run between epochs and its checkpoint contents (run_state), one step, one epoch
and evaluation (engine), LR schedules and stop rules (schedules), optimizers (optim), the
device policy and its GPU table (device), which epoch becomes best.pt (selection), signals
and mid-epoch saves (step_control), non-finite losses (nan_guard), background writes,
random streams across devices (rng), changed data at resume (data_fingerprint), the memory
estimate, the dry run, DDP (distributed) and starting N ranks (launch).
May import: basics, config, data, augment, models, run (the directory it writes) and track
(the plots and report refreshed after each epoch). Above it: predict, sweep, tune, cli.
"""
