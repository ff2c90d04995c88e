"""The command line: the parser, one function per command (main), and the commands' own glue.

Owns: `lowres ...` parsing and dispatch (main), the demo workflow (demo), dataset statistics
(stats), the augmentation preview (augment_preview) and `lowres options` (options).
May import: every package; nothing imports it but `lowres.__main__`.
"""
from lowres.cli.main import main  # the console script `lowres` (pyproject: lowres.cli:main)

__all__ = ["main"]
