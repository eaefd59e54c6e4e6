"""`python -m flashlog replay DIR [options]`: run calls dumped at level 10 again."""

import sys

from .replay import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
