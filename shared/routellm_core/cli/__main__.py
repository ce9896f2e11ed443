"""``python -m routellm_core.cli``: the ``routellm`` command."""

import sys

from routellm_core.cli import main

if __name__ == "__main__":  # importing this module (as the import-graph test does) runs nothing
    sys.exit(main())
