"""Real-Docker test harness for the host-side deploy scripts (see engine.py)."""
