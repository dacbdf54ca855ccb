"""Benchmarks: what scrapewarden costs a site, measured on this machine.

``scrapewarden bench middleware`` serves one small app bare, behind scrapewarden and behind
slowapi, and loads each with the same traffic (see :mod:`.middleware_bench`). Nothing here is
imported by the library itself.
"""
