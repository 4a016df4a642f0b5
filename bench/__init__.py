"""`make bench`: what a message costs and how fast the checks run, measured side by side in one run.

`python -m bench` runs every section and writes docs/benchmarks.json and docs/benchmarks.md. Each
section is a module with one job (`cost`, `overhead`, `coldstart`, `checks`, `reconciler`, `service`);
the rest are their tools. Benchmark tooling: it imports moto, Hypothesis and Powertools, and nothing on
the Lambda's import path imports it.
"""
