"""Bundled sample corpus for `make demo`."""
