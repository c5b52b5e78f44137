"""What a pool shows of itself: the snapshot of its state and the counters behind it,
the status panel, the Prometheus text and the health endpoint, and the tables every
command prints."""
