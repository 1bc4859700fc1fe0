"""Qt-free core of Cadre: engine, storage, catalog. Usable from the CLI, the UI and tests."""
