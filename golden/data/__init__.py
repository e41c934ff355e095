"""Real-data front ends: event-camera readers, the spoken-digit set and its cochlea encoder.

Data are read in place, never copied into the project. They live in ``<repo>/../shared/data``
(the folder beside the checkout) unless the environment variable ``SPIKESTREAM_DATA`` names
another folder; :func:`data_path` raises :class:`FileNotFoundError` naming the path it tried.

Modules
-------
``events``
    The project's one event representation (camera ``(x, y, t, p)`` and channel ``(channel, t)``
    structured arrays), the N-MNIST and AEDAT4 readers, spatial pooling to input channels and
    time binning into dense ``(T, C)`` count arrays.
``fsdd``
    The Free Spoken Digit Dataset file listing with its official split.
``cochlea``
    The audio-to-spikes front end (ERB gammatone filterbank, rectification, cube-root
    compression, leaky integrate-and-fire spike generator) and the cached encoding of the set.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "REPO_ROOT", "data_root", "data_path"]

#: Environment variable that overrides where the shared data folder is.
DATA_ENV = "SPIKESTREAM_DATA"

#: Root of the checkout (the folder holding ``golden/``).
REPO_ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """The shared data folder: ``$SPIKESTREAM_DATA`` if set, else ``<repo>/../shared/data``."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return REPO_ROOT.parent / "shared" / "data"


def data_path(*parts: str) -> Path:
    """``data_root() / parts``, checked to exist.

    Raises
    ------
    FileNotFoundError
        Naming the missing path and how to point the project at the data.
    """
    path = data_root().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"real data not found at {path}: put the shared data folder beside the checkout "
            f"(../shared/data) or set {DATA_ENV} to the folder that holds it"
        )
    return path
