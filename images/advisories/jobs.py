"""Job kinds of advisory imports (`images.advisory_import`)."""
