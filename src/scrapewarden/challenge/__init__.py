"""Challenges people pass and scripts don't: the page, its scripts, verification and clearance."""
