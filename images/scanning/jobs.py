"""Job kinds of the scanner (`images.scan` on the `scans` queue)."""
