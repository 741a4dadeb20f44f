"""Where phone events come from: D-Bus on Linux, or ``phoneagent inject``."""
