"""From a finished run to answers: predictions, submissions, evaluation and exported models.

Owns: checkpoints -> probabilities (TTA, ensembles) -> submission CSV, and evaluation with
per-class accuracy (predictions); which checkpoint is used and why (checkpoint_note); the
confusion matrix (confusion); the uint8-in, probabilities-out model (inference) and its ONNX /
TorchScript export (export).
May import: basics, config, data, augment, models, run, track, and train's device, engine and
selection (the same evaluation code as training). Nothing imports predict but the commands.
"""
