"""`python -m pool.cli ...`: the same as `ocr-pool ...`."""

from pool.cli.app import main

main()
