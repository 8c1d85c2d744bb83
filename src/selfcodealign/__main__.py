import sys

from selfcodealign.cli import main

sys.exit(main())
