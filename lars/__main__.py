import sys

from lars.cli import main

sys.exit(main())
