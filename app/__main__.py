"""``python -m app`` is the same as the ``cadre`` command."""

from app.cli.main import main

if __name__ == "__main__":  # the engine worker is spawned and re-imports this module
    raise SystemExit(main())
