"""LLM judges guided by human examples (issue 12): prompts, votes, calls, runs and the judges page.

A Django app of its own (label ``judges``) inside curation, so its tables and migrations stay apart.
"""
