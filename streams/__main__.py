"""``python -m streams``: the command line (:mod:`streams.cli`)."""

import sys

from streams.cli import main

sys.exit(main())
