"""The SimPy runtime: line files, clock, equipment and the line builder."""
