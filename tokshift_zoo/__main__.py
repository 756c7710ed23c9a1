"""``python -m tokshift_zoo``: the ``tokshift-zoo`` command, as ``python -m tokshift_zoo.cli``."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
