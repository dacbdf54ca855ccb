"""A one-settings-module Django 5.2 project: the people directory, protected by scrapewarden."""
