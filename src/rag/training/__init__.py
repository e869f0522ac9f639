"""Learned relevance: models trained on the tenant's own relevance labels (issue 15).

The room holds what both trainings share and what they train: mining each labelled query's
candidates with the product's hybrid search (:mod:`.candidates`), held-back queries and folds
(:mod:`.splits`), the ranking metrics (:mod:`.metrics`), judging a model against plain hybrid
(:mod:`.evaluation`), and the trainers (:mod:`.cross_encoder`).

It may import ``rag.core``, the model runtimes (``rag.models``) and the training libraries
(sentence-transformers, transformers, datasets, torch); the search it mines with and the label
store come in through ports, so it imports no adapter and no other service.
"""
