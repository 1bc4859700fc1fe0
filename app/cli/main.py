"""Entry point of the ``cadre`` command. Imports stay light so ``cadre --help`` is instant: each
command's module, and anything heavy, is imported only when that command runs."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import import_module

from app import API_PORT, __version__

# command -> (module, function) inside app.cli; resolved only when run
_COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("converse", "run_ask"),
    "chat": ("converse", "run_chat"),
    "specialists": ("inspect_cmds", "run_specialists"),
    "doctor": ("inspect_cmds", "run_doctor"),
    "setup": ("inspect_cmds", "run_setup"),
    "pull": ("model_cmds", "run_pull"),
    "import": ("model_cmds", "run_import"),
    "rm": ("model_cmds", "run_rm"),
    "route": ("route_cmd", "run_route"),
    "index": ("index_cmds", "run_index"),
    "search": ("index_cmds", "run_search"),
    "serve": ("serve_cmd", "run_serve"),
}


def _add_model_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pull = commands.add_parser(
        "pull",
        help="download a specialist's model (or any GGUF on the hub as a new specialist)",
        description="Download SPECIALIST's model, or with --repo/--file/--as/--domain add any GGUF "
        "from the Hugging Face hub as a new specialist. An interrupted download resumes.",
    )
    pull.add_argument("specialist", nargs="?", help="a specialist id from `cadre specialists`")
    pull.add_argument("--repo", metavar="OWNER/NAME", help="a hub repository")
    pull.add_argument("--file", metavar="FILE.gguf", help="the GGUF file in that repository")
    pull.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    _add_new_specialist_options(pull)
    imp = commands.add_parser("import", help="register a GGUF file you have as a specialist")
    imp.add_argument("path", help="the .gguf file (it stays where it is)")
    _add_new_specialist_options(imp)
    rm = commands.add_parser("rm", help="delete a specialist's downloaded model")
    rm.add_argument("specialist", help="the specialist id")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    rm.add_argument("--forget", action="store_true", help="also remove a specialist you added")


def _add_new_specialist_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="new_id", metavar="ID", help="id of the new specialist")
    parser.add_argument("--domain", help="general, code, math, medical or legal")
    parser.add_argument("--name", default="", help="display name (default: from the model)")


def _add_document_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    index = commands.add_parser(
        "index",
        help="document collections: add folders, index them, see what was skipped",
        description="Collections of folders and files that answers can be grounded in.",
    )
    actions = index.add_subparsers(dest="index_command", metavar="ACTION")
    add = actions.add_parser("add", help="add folders or files to a collection and index them")
    add.add_argument("paths", nargs="+", metavar="PATH")
    remove = actions.add_parser("rm", help="remove folders from a collection, or the collection")
    remove.add_argument("paths", nargs="*", metavar="PATH", help="(none: the whole collection)")
    update = actions.add_parser("update", help="index what changed since the last run")
    watch = actions.add_parser("watch", help="keep collections indexed as files change")
    status = actions.add_parser("status", help="collections, counts and skipped files")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    for parser, required in ((add, True), (remove, True), (update, False), (watch, False)):
        parser.add_argument("--collection", "-c", required=required, metavar="NAME")
    index.set_defaults(index_command="status", json=False)
    search = commands.add_parser(
        "search",
        help="search a collection",
        description="Search a collection for QUERY, or with no QUERY one query a line from "
        "stdin (one JSON object a line out).",
    )
    search.add_argument("query", nargs="*", help="what to look for")
    search.add_argument("--collection", "-c", required=True, metavar="NAME")
    search.add_argument("--k", type=int, default=5, help="how many passages (default 5)")
    search.add_argument("--mode", choices=("hybrid", "dense", "keyword"), default="hybrid")
    search.add_argument("--json", action="store_true", help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cadre",
        description="A team of small, private AI specialists on your own computer. "
        "With no command, opens the Cadre window.",
    )
    parser.add_argument("--version", action="version", version=f"cadre {__version__}")
    parser.add_argument(
        "--self-test", action="store_true", help="open the window, run one chat turn, exit"
    )
    parser.add_argument("--screenshot", metavar="PATH", help="with --self-test: save the window")
    # For start-up benchmarks of a frozen build (bench/package.py), which cannot run a Python probe.
    parser.add_argument("--exit-when-shown", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    ask = commands.add_parser("ask", help="ask one question and stream the answer")
    ask.add_argument("question", nargs="*", help="the question (read from stdin when absent)")
    ask.add_argument(
        "--specialist", metavar="ID", help="answer with this specialist (default: routed)"
    )
    ask.add_argument(
        "--collection", "-c", metavar="NAME", help="answer from this document collection"
    )
    chat = commands.add_parser("chat", help="chat in the terminal")
    chat.add_argument("--specialist", metavar="ID", help="chat with this specialist")
    specialists = commands.add_parser("specialists", help="list specialists and install state")
    specialists.add_argument("--json", action="store_true", help="machine-readable output")
    doctor = commands.add_parser("doctor", help="describe this machine and installation")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    commands.add_parser("setup", help="prepare the built-in offline models")
    _add_model_parsers(commands)
    _add_document_parsers(commands)
    route = commands.add_parser(
        "route",
        help="show which specialist a request would go to, and why",
        description="Route QUERY, or with no QUERY one request a line from stdin (one JSON "
        "object a line out).",
    )
    route.add_argument("query", nargs="*", help="the request")
    route.add_argument(
        "--among",
        choices=("installed", "all"),
        default="installed",
        help="route among installed specialists (default) or as if all were installed",
    )
    route.add_argument("--json", action="store_true", help="machine-readable output")
    route.add_argument("--correct", metavar="ID", help="remember that QUERY belongs to ID")
    serve = commands.add_parser(
        "serve",
        help="serve a local OpenAI-compatible API (127.0.0.1 only, with a token)",
        description="Serve the installed specialists as an OpenAI-compatible API on "
        "http://127.0.0.1:PORT/v1, for this computer only. Prints the URL and the bearer token.",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=API_PORT,
        help="port to listen on (default %(default)s; 0: any free one)",
    )
    commands.add_parser("gui", help="open the Cadre window (the default)")
    return parser


def _run_command(name: str, args: argparse.Namespace) -> int:
    from app.core.service import CadreService

    module_name, function_name = _COMMANDS[name]
    command: Callable[..., int] = getattr(import_module(f"app.cli.{module_name}"), function_name)
    service = CadreService()
    try:
        return command(service, args)
    finally:
        service.close()


def _check_display() -> None:
    """Qt aborts the process when it finds no display; say what to do instead."""
    import os

    from app.core.errors import CadreError

    has_display = any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY"))
    if (
        sys.platform.startswith("linux")
        and not has_display
        and not os.environ.get("QT_QPA_PLATFORM")
    ):
        raise CadreError(
            "No display was found, so the Cadre window cannot open.",
            hint="In a terminal, use `cadre chat` or `cadre ask`. "
            "To run the window headless, set QT_QPA_PLATFORM=offscreen.",
        )


def _report_bug(exc: BaseException) -> int:
    from app.core.crashlog import write_crash_log

    text = "".join(traceback.format_exception(exc))
    path = write_crash_log(text)
    print(text, file=sys.stderr)
    print(f"This is a bug in Cadre. The details above were saved to {path}.", file=sys.stderr)
    return 70


def main(argv: Sequence[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # a frozen app re-enters here to start the engine worker
    args = build_parser().parse_args(argv)
    from app.core.errors import CadreError, Cancelled

    try:
        if args.command in (None, "gui"):
            from pathlib import Path

            _check_display()
            from app.ui.app import run_app

            shot = Path(args.screenshot) if args.screenshot else None
            return run_app(
                self_test=args.self_test, screenshot=shot, exit_when_shown=args.exit_when_shown
            )
        return _run_command(args.command, args)
    except CadreError as exc:
        print(f"cadre: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(exc.hint, file=sys.stderr)
        return 1
    except (Cancelled, KeyboardInterrupt):
        return 130
    except Exception as exc:
        return _report_bug(exc)
