"""Pure checkers beside the model: the in-memory world that interprets the flows with faults, and the
exhaustive explorer (state space, search, model mutants). No I/O, like the rest of `statemodel`."""
