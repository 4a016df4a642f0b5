"""`python -m adapters.docgen`: write the generated docs, or `--check` that they are current."""

import sys

from adapters.docgen.generate import main

sys.exit(main())
