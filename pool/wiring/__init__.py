"""From the environment to running objects: `settings` (read and checked once),
`configs` (the typed configuration each part takes), `queues` and `runtime` (the
connections and clients a pool's workers share, opened and closed together)."""
