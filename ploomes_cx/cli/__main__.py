import sys

from ploomes_cx.cli import main

sys.exit(main())
