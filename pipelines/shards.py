"""``python -m pipelines.shards verify DIR [DIR ...]``: check image shards against their manifest.

The format's owner is :mod:`pipelines.formats.shards`; this module keeps the command's public name.
"""
import sys

from .formats.manifest import main

if __name__ == "__main__":
    sys.exit(main())
