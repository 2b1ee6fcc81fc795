"""gateway package: see README.md for what it holds."""
