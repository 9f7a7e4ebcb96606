"""The pure triage checks: values in (records, observations, ``now``), findings out.

Nothing in this package reads a clock, a file, a socket or the environment.
"""
