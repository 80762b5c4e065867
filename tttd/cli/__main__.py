"""``python -m tttd.cli ...``: the same as the ``tttd`` console script."""

import sys

from tttd.cli.main import main

sys.exit(main())
