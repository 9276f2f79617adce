"""Which format a snapshot file is in, by its name (no import of the format's libraries)."""

from __future__ import annotations

import os

__all__ = ["COLUMNAR_SUFFIXES", "PARQUET_HINT", "is_columnar", "require_parquet"]

#: what a file's name ends with when it is in the columnar format (docs/columnar.md)
COLUMNAR_SUFFIXES = (".parquet",)
#: the one line said when pyarrow is missing
PARQUET_HINT = "Parquet files need pyarrow: pip install 'rulebook[parquet]'"


def is_columnar(path: str | os.PathLike[str]) -> bool:
    """Whether a path names a columnar (Parquet) file; anything else is JSON Lines."""
    return str(path).lower().endswith(COLUMNAR_SUFFIXES)


def require_parquet() -> None:
    """OSError with PARQUET_HINT unless pyarrow imports: said before a long run that
    would write Parquet at its end, not after it."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise OSError(PARQUET_HINT) from None
