"""interpretation package."""
