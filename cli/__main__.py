"""``python -m image_compressor_cli``: the same as the ``image-compressor`` console script."""

import sys

from image_compressor_cli.main import main

sys.exit(main())
