"""Trust of the agents that write into a memory, and the defences built on it.

One module per concern, so that a change to one rule touches one file:

* :mod:`~hopmem.memory.trust.model`: the Bayesian (Beta) trust of each agent and of each memory (provenance chain);
* :mod:`~hopmem.memory.trust.gate`: the write gate (quarantine, burst limit, contradiction check);
* :mod:`~hopmem.memory.trust.contradiction`: the cheap lexical rule that flags a write contradicting a trusted one;
* :mod:`~hopmem.memory.trust.corrections`: the signals a user's overwrite or delete sends to the agent it corrects;
* :mod:`~hopmem.memory.trust.quarantine`: listing, approving and rejecting quarantined writes.

The package itself imports nothing, so ``import hopmem.memory.trust.gate`` loads only what the gate needs.
"""
