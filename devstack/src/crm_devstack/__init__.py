"""The whole platform on one machine for development and tests: embedded PostgreSQL and broker."""
