"""``python -m gancore.infer``: see :mod:`gancore.infer.cli`."""

import sys

from .cli import main

sys.exit(main())
