"""The DSL facade: ``Topology``, ``Stream``, ``Table`` and windowed streams build the plan."""
