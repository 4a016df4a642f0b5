"""The doc generators: each generated page is a function of the code, drift-checked by `make docs-check`."""
