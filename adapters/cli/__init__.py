"""The `sendguard` command line: `main` dispatches, each command module parses its arguments and prints;
the work lives in `adapters.ops`, `adapters.runtime`, `adapters.local` and `statemodel.checker`."""
