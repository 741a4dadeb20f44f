"""What the agent does, below its command line: one implementation per job, used by every
command, the demo and the agent fleet (the CLI modules parse arguments and print).

- ``agent``: the running agent (sync engines, the home region's uploader, relays, reload).
- ``upload``: which uploader an agent runs, and a broker's failures as the agent's errors.
- ``sync``: a one-shot sync of one watch, uploading what it stored when cloud sync is on.
- ``erasure``: sending the pending cloud erase requests now.
- ``pairing``: forgetting a watch (its bond, and its data unless kept).
"""
