"""Sweeps: grid expansion, launchers, aggregation of run directories."""
