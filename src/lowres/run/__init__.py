"""The run directory as a durable store: every run kept and resumed exactly.

Owns the files of `runs/<name>-<time>/` and their formats: the directory at start-up, new or
resumed (directory), one writer at a time (lock), a copy to go on from a read-only run
(copies), the event log, metrics.csv and status.json (log, with metrics.csv's column table in
metrics), val_outcomes.json (outcomes), env.json (environment), the checkpoints (checkpoint),
reading any run, running or not and of any age (read), and listing runs (listing).
May import: `lowres.basics`, `lowres.errors`, `lowres.config`. Never train, track or predict:
they all read and write runs through this package, so it works on runs of any age.
"""
