"""Cadre: a team of small, private AI specialists on your own computer."""

__version__ = "0.1.0"
APP_NAME = "Cadre"
