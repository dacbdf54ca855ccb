"""Sample sites protected by scrapewarden. Run them from the repository root (see each module)."""
