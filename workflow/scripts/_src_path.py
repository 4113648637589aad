"""Imported first by every script: puts the repository's src/ on sys.path.

Jobs then import the weightzoo library of this checkout even in an environment that holds
only its third-party dependencies (a conda env from envs/, a cluster module).
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
# first, even when another copy of weightzoo is installed: jobs run this checkout's code
if SRC in sys.path:
    sys.path.remove(SRC)
sys.path.insert(0, SRC)
