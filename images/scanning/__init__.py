"""The scanner: syft SBOMs of pushed images and uploaded binaries, normalised packages, the
distro's OSV ecosystem and the image's ABI facts (pure parts plus the scan job)."""
