"""hopmem.finetune: training of rerankers, the decomposer and the TreeHop model.

Not built yet: the recipes (ProRank, Rank-R1, cross-encoder, TreeHop) arrive with their own issues.
"""

from __future__ import annotations
