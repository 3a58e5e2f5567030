"""hopmem.ui: the Gradio app (``hopmem ui``), a face over the SDK (``hopmem.Memory``, ``hopmem.Agent``) alone.

Modules: :mod:`~.launcher` (start it: loopback, no share, a login elsewhere), :mod:`~.app` (the tabs),
:mod:`~.chat` (streamed answers, reasoning view, citations, threads, thumbs), :mod:`~.documents` (upload, sources,
remove), :mod:`~.memory_browser` (filters, provenance, erase, quarantine, trust plot), :mod:`~.settings_tab` (the
session's settings), :mod:`~.render` (the text of every view, gradio-free), :mod:`~.sessions` (open handles),
:mod:`~.identity` and :mod:`~.context` (who a session acts as). gradio is imported only by the app's modules, which
:func:`hopmem.ui.launcher.launch` loads after checking that it is installed.
"""

from __future__ import annotations
