"""`python -m pybuild`: the same command line as the installed `pybuild` script."""

from __future__ import annotations

import sys

from pybuild.cli import main

sys.exit(main())
