import sys

from kpatchctl.cli import main

sys.exit(main())
