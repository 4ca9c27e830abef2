"""Run plumbing: command lines, config checks, safe configs, checkpoint I/O, resume, distributed
runs, loggers, precision and ``compat`` (the only door to other libraries' private APIs).

The ML parts (``nets``, ``losses``, ``augment``, ``modules``) never import from here except
``compat``; the apps (``train``, ``generate``, ``evaluate``, ``report``) stand on it.
"""
