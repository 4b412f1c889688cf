import sys

from image.comfyctl.cli import main

sys.exit(main())
