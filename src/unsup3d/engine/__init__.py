"""Training machinery: the loop, run bookkeeping."""
