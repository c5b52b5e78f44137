"""`python -m gemini_simulator [OPTIONS]`: the same as `ocr-pool simulator`."""

from __future__ import annotations

from gemini_simulator.cli import main

if __name__ == "__main__":
    main()
