"""Tests of pure code: no database, Redis, simulator or subprocess service; seconds."""
