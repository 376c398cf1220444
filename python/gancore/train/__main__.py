"""``python -m gancore.train``: see :mod:`gancore.train.cli`."""

import sys

from .cli import main

sys.exit(main())
