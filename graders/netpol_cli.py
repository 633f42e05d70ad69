"""``python -m graders.netpol_cli matrix|explain ...``: the program name checks outside this repository run.
The subcommands live in ``graders.netpol.cli``."""
import sys

from graders.netpol.cli import main

if __name__ == "__main__":
    sys.exit(main())
