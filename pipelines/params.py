"""``python -m pipelines.params BASE OVERLAY --out OUT``: apply a profile to a params file.

The library is :mod:`pipelines.core.params`; this module keeps the command's public name.
"""
from .core.params import main

if __name__ == "__main__":
    main()
