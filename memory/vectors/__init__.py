"""Vector indexes: derived from the embeddings stored in SQLite, so any of them can be rebuilt from the file.

* :mod:`~hopmem.memory.vectors.base`: the :class:`VectorIndex` protocol every backend implements (the conformance
  suite in ``tests/memory/test_vector_conformance.py`` runs the same tests on each);
* :mod:`~hopmem.memory.vectors.exact`: the in-process exact index (default; safe with many processes on one file);
* :mod:`~hopmem.memory.vectors.qdrant`: Qdrant, in local mode or against a server;
* :mod:`~hopmem.memory.vectors.registry`: open a backend by name, importing it only then.
"""
