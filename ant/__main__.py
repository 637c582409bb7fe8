"""`python -m ant ...` is the `ant` command (for environments where the console script is not on PATH)."""

import sys

from ant.cli import main

sys.exit(main())
