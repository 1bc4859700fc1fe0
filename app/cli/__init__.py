"""The ``cadre`` command line."""
