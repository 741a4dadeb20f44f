"""The reference cloud receiver: the back end's side of the upload, not the phone's.

It reads the wire format the agent writes (``phoneagent.upload.payload``, the contract)
and nothing else of the agent; ``phoneagent cloud-receiver`` parses its options in
``phoneagent.cli`` and imports this package only when it runs (``docs/architecture.md``).
"""
