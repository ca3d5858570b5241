"""`python -m muslin.cli ...` runs the CLI."""

import sys

from muslin.cli.main import main

sys.exit(main())
