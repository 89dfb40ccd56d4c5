"""Compatibility of binaries with runtime images, and of build images with runtime images
(pure code over ABI facts; no database)."""
