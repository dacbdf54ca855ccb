"""Clients of the demo site: people, a good bot and scrapers. Each is bounded in time and count."""
