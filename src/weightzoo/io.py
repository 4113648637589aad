"""Small file-system helpers shared by the library: atomic writes."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A killed or failing writer never leaves a complete-looking file: the temporary file is
    hidden, in the same directory (so the rename is atomic) and ends in `.tmp`, so globs such
    as `results/weights/**/*.parquet` never pick it up even if a SIGKILL leaves it behind; it
    is removed on any exception. The temporary file is
    created empty to reserve its name; writers simply overwrite it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL reserves the name; mode 0o666 lets the umask decide permissions, as for a
    # plain open() (tempfile.mkstemp would make the final file private, 0o600).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
