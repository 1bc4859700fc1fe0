"""``cadre pull``, ``cadre import`` and ``cadre rm``: get models onto this computer and off it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.progress import drive
from app.core.errors import CadreError
from app.core.service import CadreService
from app.core.tasks import CancelToken
from app.core.units import human_bytes
from app.core.user_manifests import NewSpecialist


def run_pull(service: CadreService, args: argparse.Namespace) -> int:
    cancel = CancelToken()
    if args.repo or args.file:
        new = _new_specialist(args, "pull --repo OWNER/NAME --file FILE.gguf")
        if not (args.repo and args.file):
            raise CadreError("Adding a specialist from the hub needs both --repo and --file.")
        job = service.installer.add_from_hub(new, args.repo, args.file, args.revision, cancel)
    elif args.specialist:
        job = service.installer.pull(args.specialist, cancel)
    else:
        raise CadreError(
            "Say which specialist to download.",
            hint="See `cadre specialists`, or add one with --repo, --file, --as and --domain.",
        )
    result = drive(job, "Stopped. Run the same command again to resume the download.")
    entry = service.catalog.entry(result.specialist_id)
    verb = "Downloaded and verified" if result.downloaded else "Already installed and current:"
    print(f"{verb} {entry.manifest.name} ({human_bytes(result.size_bytes)}) at {result.path}")
    print(f"Memory: {service.fit_advice(entry).summary}")
    return 0


def _new_specialist(args: argparse.Namespace, what: str) -> NewSpecialist:
    if not args.new_id or not args.domain:
        raise CadreError(
            f"`cadre {what}` needs --as ID and --domain DOMAIN for the new specialist.",
            hint="For example: --as my-coder --domain code",
        )
    return NewSpecialist(args.new_id, args.domain, args.name)


def run_import(service: CadreService, args: argparse.Namespace) -> int:
    new = _new_specialist(args, "import PATH.gguf")
    entry = service.installer.import_file(Path(args.path), new)
    print(f"Added {entry.manifest.name} ({entry.manifest.domain}) from {entry.model_path}")
    print(f"Memory: {service.fit_advice(entry).summary}")
    return 0


def run_rm(service: CadreService, args: argparse.Namespace) -> int:
    installer = service.installer
    plan = installer.plan_removal(args.specialist, forget=args.forget)
    if plan.empty:
        print(f"{plan.name} has no downloaded model to remove.")
        return 0
    print("\n".join(plan.describe()))
    if not args.yes:
        if not sys.stdin.isatty():
            raise CadreError("Not removing anything without confirmation.", hint="Add --yes.")
        if input("Go ahead? [y/N] ").strip().lower() not in {"y", "yes"}:
            print("Nothing removed.")
            return 1
    installer.remove(plan)
    print("Removed.")
    return 0
