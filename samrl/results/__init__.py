"""What is read from run directories: run tables, summaries and aggregates, statistics (IQM,
bootstrap CIs), paper tables, figures and reports (used by sweep and the CLI)."""
