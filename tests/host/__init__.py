"""Real-Docker tests of what runs on the instance (the test bed: testbed/README.md)."""
