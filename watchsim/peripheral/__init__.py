"""The watch's BLE peripheral role: one port (``port``), one module per adapter.

``bumble_adapter`` (loopback air, raw HCI) and ``bless_adapter`` (BlueZ) are imported
explicitly by whoever picks the adapter, so neither stack is loaded needlessly. The
Bumble adapter's pairing policy and GATT server hardening live beside it
(``bumble_pairing``, ``bumble_gatt``).
"""
