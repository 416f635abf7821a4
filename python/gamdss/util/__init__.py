"""Utilities with no MER knowledge: atomic writes, run locks, device checks, seeds."""
