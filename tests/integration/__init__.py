"""Tests against real PostgreSQL and Redis, the Gemini simulator, pools as processes."""
