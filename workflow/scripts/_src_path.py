"""Imported first by every script: puts the repository's src/ on sys.path.

Jobs then import the weightzoo library of this checkout even in an environment that holds
only its third-party dependencies (a conda env from envs/, a cluster module).
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
