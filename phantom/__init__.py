"""phantom package."""
