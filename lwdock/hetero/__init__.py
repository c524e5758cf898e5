"""Heterogeneous feature spaces: find and reuse table learnwares whose columns differ from yours.

* :mod:`.names`, :mod:`.stats`: column names and per-table statistics (the packed hetero stats);
* :mod:`.matching`, :mod:`.colmap`, :mod:`.importance`: matching columns by name, the label-free
  column map (arrays only), and the column importance measured at submission;
* :mod:`.store`, :mod:`.maintain`, :mod:`.doctor`: the hetero index beside the search store, kept
  in step with the dock by a listener that :mod:`lwdock.api` attaches;
* :mod:`.encoder`, :mod:`.mapping`, :mod:`.kernel`: the trained map (an extra ranking term) and
  when it is trained;
* :mod:`.rank`, :mod:`.query`: the heterogeneous half of a search, and the maps of reuse.

The method, what is trained when, and its limits: ``docs/heterogeneous.md``. This package imports
only lwdock's leaves and :mod:`lwdock.spec`; the layers above (search, reuse, api) call it.
"""
