"""Cadre's local, OpenAI-compatible HTTP API (``cadre serve``): standard library only, Qt-free.

Safe by default: it listens on 127.0.0.1 only, every request needs the bearer token kept in the
data folder (mode 0600), and requests addressed to another host name or sent from a web page are
refused (DNS rebinding). See ``server.py`` for the lifecycle and ``handler.py`` for the checks.
"""

from app.core.api.server import HOST, ApiServer
from app.core.api.token import load_or_create_token

__all__ = ["HOST", "ApiServer", "load_or_create_token"]
