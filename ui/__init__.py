"""hopmem.ui: the Gradio app (``hopmem ui``).

Not built yet: the UI arrives with its own issue; gradio is already installed by ``make install``.
"""

from __future__ import annotations
