"""``python -m edgeconv.bench reference``: the reference-model benchmark (one thread)."""

import sys

from edgeconv.bench.reference import main, reexec_single_threaded

reexec_single_threaded()
sys.exit(main())
