"""Qt parts of the OrganSegBench module widget, split by panel (the MRML logic is in OrganSegBenchLib)."""
