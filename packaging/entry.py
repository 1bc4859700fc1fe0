"""The frozen app's entry point: the ``cadre`` command, which opens the window when given none.

``main`` calls ``multiprocessing.freeze_support()`` first, so the engine worker (a spawn child that
re-runs this executable) becomes the worker instead of a second app.
"""

import sys

from app.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
