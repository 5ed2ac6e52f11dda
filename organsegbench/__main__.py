"""``python -m organsegbench`` runs the command line."""

import sys

from organsegbench.cli import main

sys.exit(main())
