"""Stellar-specific decoding: networks, StrKeys, envelopes (stellar-sdk, imported lazily)."""
