"""``python -m medic_cli ...`` is the ``medic`` command."""
import logging
import sys

from medic_cli.main import main

logging.captureWarnings(True)
sys.exit(main())
