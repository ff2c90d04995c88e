"""`python -m lowres ...` (and `torchrun -m lowres train ...`) runs the CLI."""
from lowres.cli import main

raise SystemExit(main())
