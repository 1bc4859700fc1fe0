"""``cadre serve``: the local OpenAI-compatible API, until Ctrl+C."""

from __future__ import annotations

import argparse

from app.cli.output import note
from app.core.service import CadreService


def run_serve(service: CadreService, args: argparse.Namespace) -> int:
    from app.core.api import ApiServer

    server = ApiServer(service, port=args.port, on_log=note)
    print(f"Cadre API: {server.base_url}", flush=True)
    print(f"Token: {server.token}", flush=True)
    note(
        "OpenAI-compatible: use that URL as base_url and the token as api_key; model 'auto' "
        "routes each request. Only this computer can connect. Ctrl+C stops."
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        note("Stopping…")
    finally:
        server.stop()
    return 0
