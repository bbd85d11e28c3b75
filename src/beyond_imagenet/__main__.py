"""``python -m beyond_imagenet`` runs the command line."""

import sys

from beyond_imagenet.cli import main

sys.exit(main())
