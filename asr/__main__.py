"""``python -m asr``: the command line, so that ``torchrun -m asr train ...`` works."""

import sys

from asr.cli import main

sys.exit(main())
