"""Hostile input: a poison corpus uploaded while health and search are watched, then every RPC fuzzed.

``python -m bench.adversarial`` runs it against the local stack (see its ``--help``);
``poison`` builds the corpus, ``probes`` watches the stack while it is processed.
"""
