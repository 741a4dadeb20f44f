"""An emulated smartwatch: physiology model, on-watch history and a GATT server."""
