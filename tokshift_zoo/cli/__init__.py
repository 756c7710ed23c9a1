"""The ``tokshift-zoo`` command: argument parsing and printing only; each command calls a library function.

Conventions every command follows: options shared between commands come from one ``_add_*_options`` function
each (a new command reuses them); defaults come from the library (``TrainConfig``, ``DEFAULT_MODEL``) and
``--help`` shows them; every error is one line, ``tokshift-zoo CMD: error: ...``; exit code 0 on success, 2 for
a usage error (bad arguments, unknown names, a bad list: ``ConfigError``; a device this machine lacks:
``DeviceError``), 1 for a failure (weights that cannot be had or verified, unreadable videos). Importing this
package imports no torch, so ``--help`` is quick.

``options`` holds the option types and blocks and the helpers every command shares; one module per command group
(``models``, ``publish``, ``inference``, ``export``, ``train``, ``benchmark``, ``demo``) holds its ``_cmd_*``
functions and ``add_parsers``, which adds its commands' parsers; ``main`` builds the parser from them and turns
errors into one line and an exit code.
"""

from .main import build_parser, main
from .options import AMP_CHOICES

__all__ = ["AMP_CHOICES", "build_parser", "main"]
