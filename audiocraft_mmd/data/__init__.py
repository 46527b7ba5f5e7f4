"""Data utilities for audiocraft-mmd.

Kept import-light on purpose: `audiocraft_mmd.data.prepare` pulls in music21/scipy lazily,
so importing this package costs nothing.
"""
