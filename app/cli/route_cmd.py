"""``cadre route``: where a request would go, and why, without answering it."""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.output import note
from app.core.routing.router import RouteDecision
from app.core.service import CadreService


def _as_json(query: str, decision: RouteDecision) -> str:
    return json.dumps({"query": query, **decision.as_dict()}, ensure_ascii=False)


def _as_text(decision: RouteDecision, service: CadreService) -> str:
    name = service.catalog.manifest(decision.specialist_id).name
    scores = "  ".join(
        f"{d} {s:.0%}" for d, s in sorted(decision.scores.items(), key=lambda i: -i[1])
    )
    lines = [f"{name} ({decision.specialist_id}) · {decision.reason}", f"scores: {scores}"]
    if decision.suggestion is not None:
        lines.append(decision.suggestion.as_command_hint())
    return "\n".join(lines)


def run_route(service: CadreService, args: argparse.Namespace) -> int:
    query = " ".join(args.query).strip()
    if args.correct:
        if not query:
            note("Say which question to correct: cadre route --correct ID QUESTION")
            return 2
        service.routing.correct(query, args.correct)
        note(f"Noted: questions like that go to {args.correct} from now on.")
    if query:
        decision = service.routing.route(query, among=args.among)
        print(_as_json(query, decision) if args.json else _as_text(decision, service))
        return 0
    for line in sys.stdin:  # one query a line in, one JSON object a line out
        if line.strip():
            print(_as_json(line.strip(), service.routing.route(line.strip(), among=args.among)))
            sys.stdout.flush()
    return 0
