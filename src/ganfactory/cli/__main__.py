import sys

from ganfactory.cli import main

sys.exit(main())
