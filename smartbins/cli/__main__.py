import sys

from smartbins.cli import main

sys.exit(main())
