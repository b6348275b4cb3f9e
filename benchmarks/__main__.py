"""``python -m benchmarks``: the benchmark suite (see :mod:`benchmarks._suite`)."""
import sys

from benchmarks._suite import main

sys.exit(main())
