"""Training the SAM 2 architecture on LPTEM clips (``samem train``)."""
