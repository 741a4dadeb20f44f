"""The phone side: pairing, lossless sync, encrypted storage, relays and optional upload."""
