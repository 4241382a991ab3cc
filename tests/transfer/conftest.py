"""Fixtures of the transfer tests: ``frame_cache`` (the emulated-frame cache folder) is tests/conftest.py's,
shared with the demo test."""
