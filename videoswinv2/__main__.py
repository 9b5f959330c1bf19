import sys

from videoswinv2.cli import main

sys.exit(main())
