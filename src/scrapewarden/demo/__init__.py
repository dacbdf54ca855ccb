"""The demo: a small people site behind scrapewarden, and clients that browse or scrape it."""
