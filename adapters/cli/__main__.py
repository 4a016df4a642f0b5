"""`python -m adapters.cli`: the `sendguard` command, when its script is not on PATH."""

import sys

from adapters.cli.main import main

sys.exit(main())
