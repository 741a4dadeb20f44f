"""The contract between watch and phone: UUIDs, the GATT profile table and byte codecs.

Pure code: no I/O, no imports from ``watchsim`` or ``phoneagent``.
"""
