"""Catalog schema revisions, oldest first. Written by hand; never edit a released one."""
