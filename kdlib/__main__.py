"""``python -m kdlib``: the command line lives in :mod:`kdlib.tooling.cli`."""
import sys

from .tooling.cli import main

if __name__ == "__main__":
    sys.exit(main())
