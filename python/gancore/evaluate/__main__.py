"""``python -m gancore.evaluate``: see :mod:`gancore.evaluate.cli`."""

import sys

from .cli import main

sys.exit(main())
