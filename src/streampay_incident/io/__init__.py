"""Parsers at the edge: exports (JSON Lines, CSV, JSON) into model objects, with line numbers."""
