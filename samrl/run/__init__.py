"""One training run: its stages (train), the loop, minibatch sampling, threads, evaluation,
the per-run CSV writer, training hooks for algorithms, stopping rules and trackers."""
