"""The ground floor: small helpers every other package uses, none about images or training.

Owns: value checks shared by config keys and augmentation parameters (checks), progress bars
for terminals and notebooks (progress), durations such as "11h30m" (durations), confidence
intervals and paired tests (intervals), durable atomic file writes (disk) and what differs
between the torch versions supported (compat).
May import: `lowres.errors` only, so every other package may import it.
"""
