"""meshkit: a self-serve data mesh platform."""
