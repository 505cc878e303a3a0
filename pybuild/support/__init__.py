"""Plumbing every stage shares: the network, the package index, the cache, files and zips."""
