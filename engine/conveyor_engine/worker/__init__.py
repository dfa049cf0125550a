"""The engine worker: claims task attempts from a pool's stream, runs them, commits outcomes."""
