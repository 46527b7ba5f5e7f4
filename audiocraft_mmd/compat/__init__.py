"""Fixes for audiocraft 1.3.0 on torch 2.11 / numpy 2, each in its own module saying which
audiocraft behaviour it replaces and why. Nothing here patches audiocraft: our solvers and
loaders call these functions instead of the broken audiocraft paths.
"""
