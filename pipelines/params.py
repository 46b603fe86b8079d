"""``python -m pipelines.params BASE OVERLAY --out OUT``: apply a profile to a params file.

The library is :mod:`pipelines.core.profiles` (overlay rules: docs/params.md); this module keeps the
command's public name.
"""
import sys

from .core.profiles import main

if __name__ == "__main__":
    sys.exit(main())
