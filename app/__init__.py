"""Cadre: a team of small, private AI specialists on your own computer."""

import os

__version__ = "0.1.0"
APP_NAME = "Cadre"
API_PORT = 8765  # the local API's port (cadre serve, the window) unless the user picks another

# Privacy by default, set before any library reads it at import: huggingface_hub otherwise adds
# usage details to its user agent and, for that, fetches a registry from the hub once a day.
# A user who wants it can still set HF_HUB_DISABLE_TELEMETRY=0.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# numpy's OpenBLAS threads spin after each call and starve torch's on a 2-core laptop: routing's tiny
# similarity product made the next embedding 3-4x slower (18 ms -> 66 ms measured). Cadre's numpy
# work is small; keep it on one thread unless the user chose otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
