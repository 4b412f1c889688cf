"""Reusable constructs. Each owns one concern and takes a typed settings object."""
