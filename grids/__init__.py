"""Dora grids of audiocraft-mmd (`dora grid NAME` from the repository root). Not part of the installed package."""
