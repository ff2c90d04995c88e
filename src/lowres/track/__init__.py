"""Presenting runs: plots, report.html, comparisons of runs and seed groups, TensorBoard.

Owns: one PNG per panel (plots), the report and comparison pages with their jinja2 templates
(report, compare, templates/), differing config keys (configdiff), curves of several runs
(overlay), McNemar tests between runs (paired) and TensorBoard event files (tensorboard).
May import: basics, config, errors and run (it reads run directories; it never imports train,
so it presents runs of any age, running or not).
"""
