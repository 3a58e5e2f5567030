"""``hopmem serve``: the HTTP server (an OpenAI-compatible chat endpoint and the memory REST API, behind API keys).

A thin face over :class:`hopmem.Memory` and :class:`hopmem.Agent`: a request's key maps to a tenant and an agent
identity (:mod:`~.auth`, :mod:`~.keys`) and the routes call the SDK opened for them; tenant, trust and quarantine
rules stay in the memory engine. :func:`~.factory.create_app` builds the application.
"""

from __future__ import annotations
