"""``python -m benchmarks run [--quick] [--only SCENARIO ...]``, ``python -m benchmarks render``."""

import sys

from benchmarks.runner import main

sys.exit(main())
