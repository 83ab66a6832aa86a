"""``python -m unsup3d.cli`` (as ``torchrun -m unsup3d.cli`` starts each process): the ``unsup3d`` command."""

import sys

from unsup3d.cli import main

sys.exit(main())
