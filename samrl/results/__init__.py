"""Reading results: run tables, summary.csv and aggregate.csv (used by sweep and analysis)."""
