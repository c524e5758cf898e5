"""A small stand-in for the ``learnware`` package, available only inside lwdock's model worker.

It provides what reference learnware model modules import: ``learnware.model.BaseModel``.
"""

__version__ = "0.0.0+lwdock-shim"
