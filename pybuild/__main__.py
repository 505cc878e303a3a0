from __future__ import annotations

import sys

from pybuild.cli import main

sys.exit(main())
