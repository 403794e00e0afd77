"""Framework-free soft-label resampling, containers and losses (torch + numpy only)."""
